/**
 * Pull benchmark: a ~256 MiB backup served by a private OpenSSH sshd on loopback, fetched
 * in one run by `sqlbk pull` (download + verification: checksum, gunzip,
 * integrity_check), OpenSSH `sftp` (batch `get`) and `scp`, and by `sftp` followed by the
 * same checks with the standard tools (`sha256sum -c`, `gzip -dc`, `sqlite3`). Prints
 * times, throughput, the ratios, and sqlbk's peak RSS (from `/usr/bin/time -v`).
 *
 *   deno run -A bench/pull_bench.ts [--mib 256] [--runs 1]
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { runBackup } from "../src/job.ts";
import { sha256File } from "../src/gzip.ts";
import { CLI_PERMISSIONS, ROOT, run, sqlite3 } from "../tests/support/db.ts";
import { opensshClientArgs, startSshd } from "../tests/support/sshd.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mib: { type: "string", default: "256" },
    runs: { type: "string", default: "1" },
    concurrency: { type: "string" },
    "chunk-size": { type: "string" },
  },
});
const MIB = Number(values.mib);
const RUNS = Number(values.runs);

function mibps(bytes: number, ms: number): string {
  return `${(bytes / 1048576 / (ms / 1000)).toFixed(0)} MiB/s`;
}

async function timed(cmd: string, args: string[], env?: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const out = await run(cmd, args, { env });
  const ms = performance.now() - t0;
  if (out.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}):\n${out.stderr}`);
  return ms;
}

const work = await Deno.makeTempDir({ prefix: "sqlbk-bench-" });
await using sshd = await startSshd();
try {
  // A database of incompressible blobs, so the archive is about MIB MiB.
  console.error(`making a ~${MIB} MiB backup...`);
  const db = join(work, "bench.db");
  const rows = Math.round((MIB * 1048576) / 4096);
  await sqlite3(
    db,
    `PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
INSERT INTO blobs (data) SELECT randomblob(4000) FROM c;`,
  );
  const backup = await runBackup({ sourcePath: db, backupDir: join(work, "made"), strategy: "vacuum" });
  const remote = join(sshd.remoteDir, backup.file);
  await Deno.rename(backup.path, remote);
  await Deno.writeTextFile(`${remote}.sha256`, `${await sha256File(remote)}  ${backup.file}\n`);
  await Deno.remove(db);
  const size = (await Deno.stat(remote)).size;
  console.error(`archive: ${backup.file}, ${(size / 1048576).toFixed(1)} MiB`);

  const sshOpts = opensshClientArgs(sshd);
  const env = { SSH_AUTH_SOCK: "" };
  const results: Record<string, number[]> = { sqlbk: [], sftp: [], byHand: [], scp: [] };
  let rssKiB = 0;
  for (let i = 0; i < RUNS; i++) {
    // OpenSSH sftp, batch get.
    const sftpOut = join(work, `sftp-${i}.bck.gz`);
    const batch = join(work, "batch");
    await Deno.writeTextFile(batch, `get ${remote} ${sftpOut}\n`);
    results.sftp.push(
      await timed("sftp", ["-q", ...sshOpts, "-P", String(sshd.port), "-b", batch, `${sshd.user}@127.0.0.1`], env),
    );
    // The same by hand, verified with the standard tools: sftp get, sha256sum -c, gzip -dc,
    // sqlite3 PRAGMA integrity_check (what sqlbk pull does in one command).
    const handDb = join(work, `hand-${i}.db`);
    const handStart = performance.now();
    await timed("sftp", ["-q", ...sshOpts, "-P", String(sshd.port), "-b", batch, `${sshd.user}@127.0.0.1`], env);
    await timed("sh", [
      "-c",
      `cd '${work}' && echo "$(cut -d' ' -f1 '${remote}.sha256')  sftp-${i}.bck.gz" | sha256sum -c --quiet && gzip -dc 'sftp-${i}.bck.gz' > '${handDb}'`,
    ]);
    const check = await run("sqlite3", [handDb, "PRAGMA integrity_check;"]);
    if (check.stdout.trim() !== "ok") throw new Error(`integrity_check of the hand pipeline: ${check.stdout}`);
    results.byHand.push(performance.now() - handStart);
    await Deno.remove(handDb);
    await Deno.remove(sftpOut);

    // scp.
    const scpOut = join(work, `scp-${i}.bck.gz`);
    results.scp.push(
      await timed("scp", ["-q", ...sshOpts, "-P", String(sshd.port), `${sshd.user}@127.0.0.1:${remote}`, scpOut], env),
    );
    await Deno.remove(scpOut);

    // sqlbk pull, under /usr/bin/time -v for the peak RSS.
    const to = join(work, `pulled-${i}`);
    const extra = [
      ...(values.concurrency ? ["--concurrency", values.concurrency] : []),
      ...(values["chunk-size"] ? ["--chunk-size", values["chunk-size"]] : []),
    ];
    const t0 = performance.now();
    const out = await run("/usr/bin/time", [
      "-v",
      Deno.execPath(),
      "run",
      "--quiet",
      // As `deno task sqlbk` and the compiled binaries run it: a small young generation
      // keeps ssh2's short-lived packet buffers from inflating the RSS (measured).
      "--v8-flags=--max-semi-space-size=2",
      ...CLI_PERMISSIONS,
      join(ROOT, "cli/main.ts"),
      "pull",
      `${sshd.user}@127.0.0.1:${sshd.remoteDir}`,
      "--port",
      String(sshd.port),
      "-i",
      sshd.clientKey,
      "--known-hosts",
      sshd.knownHosts,
      "--to",
      to,
      "--quiet",
      ...extra,
    ], { env });
    const ms = performance.now() - t0;
    if (out.code !== 0) throw new Error(`sqlbk pull failed (${out.code}):\n${out.stderr}`);
    results.sqlbk.push(ms);
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(out.stderr);
    rssKiB = Math.max(rssKiB, rss ? Number(rss[1]) : 0);
    await Deno.remove(to, { recursive: true });
  }

  const best = (xs: number[]) => Math.min(...xs);
  const openssh = best(results.sftp);
  console.log(`pull of ${(size / 1048576).toFixed(1)} MiB over loopback (best of ${RUNS}; sshd ${sshd.port}):`);
  console.log(
    `  sqlbk pull (download + verify) ${(best(results.sqlbk) / 1000).toFixed(2)} s  ${
      mibps(size, best(results.sqlbk))
    }  ratio to OpenSSH sftp ${(openssh / best(results.sqlbk)).toFixed(2)}x  peak RSS ${
      (rssKiB / 1024).toFixed(0)
    } MiB`,
  );
  console.log(`  OpenSSH sftp get               ${(openssh / 1000).toFixed(2)} s  ${mibps(size, openssh)}`);
  console.log(
    `  scp                            ${(best(results.scp) / 1000).toFixed(2)} s  ${mibps(size, best(results.scp))}`,
  );
  console.log(
    `  sftp + sha256sum + gzip -dc + sqlite3 integrity_check (the same checks by hand) ${
      (best(results.byHand) / 1000).toFixed(2)
    } s; sqlbk pull ratio to it ${(best(results.byHand) / best(results.sqlbk)).toFixed(2)}x`,
  );
  console.log(
    `  target: >= 0.80x OpenSSH throughput, peak RSS < 150 MiB (all runs: sqlbk ${
      results.sqlbk.map((m) => (m / 1000).toFixed(2)).join(", ")
    } s; sftp ${results.sftp.map((m) => (m / 1000).toFixed(2)).join(", ")} s; scp ${
      results.scp.map((m) => (m / 1000).toFixed(2)).join(", ")
    } s)`,
  );
} finally {
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
