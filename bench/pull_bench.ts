/**
 * Pull benchmark: backups served by a private OpenSSH sshd on loopback, fetched in one run
 * by `sqlbk pull` (download + verification: checksum, decompression, the full check), by sqlbk's
 * transfer alone (connectSftp + downloadRange, no verification), OpenSSH `sftp` (batch
 * `get`) and `scp`, and by `sftp` followed by the same checks with the standard tools
 * (`sha256sum -c`, `gzip -dc` or `zstd -dc`, `sqlite3`). Archives: `text` (one table with
 * text columns and two indexes, about 3x compressible), `blobs` (incompressible random
 * blobs) and `app` (bench/_data.ts: four tables of comparable size with text and two
 * indexes each, about 3x compressible, where the index cross-checks make the full check
 * the long step). Prints times, throughput, the ratios, and sqlbk's peak RSS (from
 * `/usr/bin/time -v`).
 *
 *   deno run -A bench/pull_bench.ts [--mib 256] [--runs 1] [--data text,blobs,app] [--before DIR]...
 *     [--compression gzip|zstd] [--check full|quick] [--jobs N]
 *
 * `--compression` is the archives' codec (default gzip); `--check` and `--jobs` go to
 * `sqlbk pull` (the hand pipeline always runs one `PRAGMA integrity_check`).
 *
 * `--before DIR` also times `sqlbk pull` from another source tree (e.g. the previous
 * commit, `git archive HEAD~1 | tar -x -C DIR`) in the same run, with the same server;
 * repeat it for several trees. A tree with the OpenSSH transport (src/pull/ssh_process.ts)
 * also gets its transfer alone timed, in this process.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { runBackup } from "../src/job.ts";
import { sha256File } from "../src/hash.ts";
import { makeAppDatabase } from "./_data.ts";
import { connectSftp } from "../src/pull/transport.ts";
import { downloadRange } from "../src/pull/download.ts";
import { CLI_PERMISSIONS, ROOT, run, sqlite3 } from "../tests/support/db.ts";
import { opensshClientArgs, type Sshd, sshdConnectOptions, startSshd } from "../tests/support/sshd.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mib: { type: "string", default: "256" },
    runs: { type: "string", default: "1" },
    data: { type: "string", default: "text,blobs" },
    before: { type: "string", multiple: true, default: [] },
    concurrency: { type: "string" },
    "chunk-size": { type: "string" },
    compression: { type: "string", default: "gzip" },
    check: { type: "string" },
    jobs: { type: "string" },
  },
});
const CODEC = values.compression as "gzip" | "zstd";
if (CODEC !== "gzip" && CODEC !== "zstd") throw new Error(`--compression: gzip or zstd, not "${CODEC}"`);
const EXT = CODEC === "zstd" ? "zst" : "gz";
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

/** SQL that fills a database of about `mib` MiB. */
function fillSql(kind: string, mib: number): string {
  if (kind === "blobs") {
    const rows = Math.round((mib * 1048576) / 4096);
    return `PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
INSERT INTO blobs (data) SELECT randomblob(4000) FROM c;`;
  }
  // Text columns and two indexes, like an app's events table (about 290 bytes a row with its index entries).
  const rows = Math.round((mib * 1048576) / 290);
  return `PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
CREATE TABLE events (id INTEGER PRIMARY KEY, account TEXT NOT NULL, kind TEXT NOT NULL, created TEXT NOT NULL, body TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
INSERT INTO events (account, kind, created, body) SELECT
  'acct-' || (abs(random()) % 20000),
  CASE abs(random()) % 5 WHEN 0 THEN 'login' WHEN 1 THEN 'purchase' WHEN 2 THEN 'refund' WHEN 3 THEN 'view' ELSE 'logout' END,
  strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + x * 7, 'unixepoch'),
  'order ' || x || ' status ' || (x % 7) || ' ref ' || hex(randomblob(12)) || ' ' ||
    substr('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore', 1 + x % 30, 60)
FROM c;
CREATE INDEX events_account ON events (account, created);
CREATE INDEX events_kind ON events (kind, created);`;
}

async function makeArchive(sshd: Sshd, work: string, kind: string): Promise<{ remote: string; dbBytes: number }> {
  console.error(`making the ${kind} backup (~${MIB} MiB database)...`);
  const db = join(work, `${kind}.db`);
  if (kind === "app") await makeAppDatabase(db, MIB, "several");
  else await sqlite3(db, fillSql(kind, MIB));
  const dbBytes = (await Deno.stat(db)).size;
  const backup = await runBackup({
    sourcePath: db,
    backupDir: join(work, `made-${kind}`),
    strategy: "vacuum",
    compression: CODEC,
  });
  const dir = join(sshd.remoteDir, kind);
  await Deno.mkdir(dir);
  const remote = join(dir, backup.file);
  await Deno.rename(backup.path, remote);
  await Deno.writeTextFile(`${remote}.sha256`, `${await sha256File(remote)}  ${backup.file}\n`);
  await Deno.remove(db);
  return { remote, dbBytes };
}

/** `sqlbk pull` from the source tree `root`, under /usr/bin/time -v; resolves to [ms, peak RSS KiB]. */
async function timePull(root: string, sshd: Sshd, remoteDir: string, to: string, extra: string[]) {
  const args = [
    "pull",
    `${sshd.user}@127.0.0.1:${remoteDir}`,
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
  ];
  // The tree after the change takes --ssh-config; one from before it has no such flag.
  const text = await Deno.readTextFile(join(root, "cli/commands/pull.ts"));
  if (text.includes('"ssh-config"')) args.push("--ssh-config", sshd.sshConfig);
  const t0 = performance.now();
  const out = await run("/usr/bin/time", [
    "-v",
    Deno.execPath(),
    "run",
    "--quiet",
    // As `deno task sqlbk` and the compiled binaries run it.
    "--v8-flags=--max-semi-space-size=2",
    ...CLI_PERMISSIONS,
    join(root, "cli/main.ts"),
    ...args,
  ], { cwd: root, env: { SSH_AUTH_SOCK: "", HOME: Deno.env.get("HOME") ?? "/" } });
  const ms = performance.now() - t0;
  if (out.code !== 0) throw new Error(`sqlbk pull (${root}) failed (${out.code}):\n${out.stderr}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(out.stderr);
  await Deno.remove(to, { recursive: true });
  return [ms, rss ? Number(rss[1]) : 0] as const;
}

async function bench(sshd: Sshd, work: string, kind: string): Promise<void> {
  const { remote, dbBytes } = await makeArchive(sshd, work, kind);
  const remoteDir = join(sshd.remoteDir, kind);
  const size = (await Deno.stat(remote)).size;
  const sshOpts = opensshClientArgs(sshd);
  const env = { SSH_AUTH_SOCK: "" };
  const results: Record<string, number[]> = { sqlbk: [], transfer: [], sftp: [], byHand: [], scp: [] };
  let rssKiB = 0;
  const trees = await Promise.all(values.before.map(async (dir) => ({ dir, ...(await _transferOf(dir)) })));
  const before = trees.map(() => ({ pull: [] as number[], transfer: [] as number[], rssKiB: 0 }));
  const extra = [
    ...(values.concurrency ? ["--concurrency", values.concurrency] : []),
    ...(values["chunk-size"] ? ["--chunk-size", values["chunk-size"]] : []),
    ...(values.check ? ["--check", values.check] : []),
    ...(values.jobs ? ["--jobs", values.jobs] : []),
  ];
  for (let i = 0; i < RUNS; i++) {
    // OpenSSH sftp, batch get.
    const sftpOut = join(work, `sftp-${i}.bck.${EXT}`);
    const batch = join(work, "batch");
    await Deno.writeTextFile(batch, `get ${remote} ${sftpOut}\n`);
    const sftpArgs = ["-q", ...sshOpts, "-P", String(sshd.port), "-b", batch, `${sshd.user}@127.0.0.1`];
    results.sftp.push(await timed("sftp", sftpArgs, env));
    // The same by hand, verified with the standard tools (what sqlbk pull does in one command).
    const handDb = join(work, `hand-${i}.db`);
    const handStart = performance.now();
    await timed("sftp", sftpArgs, env);
    await timed("sh", [
      "-c",
      `cd '${work}' && echo "$(cut -d' ' -f1 '${remote}.sha256')  sftp-${i}.bck.${EXT}" | sha256sum -c --quiet && ${
        CODEC === "zstd" ? "zstd -q" : "gzip"
      } -dc 'sftp-${i}.bck.${EXT}' > '${handDb}'`,
    ]);
    const check = await run("sqlite3", [handDb, "PRAGMA integrity_check;"]);
    if (check.stdout.trim() !== "ok") throw new Error(`integrity_check of the hand pipeline: ${check.stdout}`);
    results.byHand.push(performance.now() - handStart);
    await Deno.remove(handDb);
    await Deno.remove(sftpOut);

    // scp.
    const scpOut = join(work, `scp-${i}.bck.${EXT}`);
    results.scp.push(
      await timed("scp", ["-q", ...sshOpts, "-P", String(sshd.port), `${sshd.user}@127.0.0.1:${remote}`, scpOut], env),
    );
    await Deno.remove(scpOut);

    // sqlbk's transfer alone, in this process: the ssh child, the pipes, SFTP, the file writes.
    const local = join(work, `transfer-${i}`);
    const t0 = performance.now();
    {
      await using session = await connectSftp(sshdConnectOptions(sshd));
      await downloadRange(session, remote, { localPath: local, size });
    }
    results.transfer.push(performance.now() - t0);
    await Deno.remove(local);

    // sqlbk pull, and the trees from before when given, in an order rotated every run: the
    // first pull after the others' writes meets the page cache's writeback, a bias of its own.
    const order = [-1, ...trees.keys()];
    for (const j of [...order.slice(i % order.length), ...order.slice(0, i % order.length)]) {
      if (j === -1) {
        const [ms, rss] = await timePull(ROOT, sshd, remoteDir, join(work, `pulled-${i}`), extra);
        results.sqlbk.push(ms);
        rssKiB = Math.max(rssKiB, rss);
        continue;
      }
      const tree = trees[j];
      const [bms, brss] = await timePull(tree.dir, sshd, remoteDir, join(work, `before-${i}`), extra);
      before[j].pull.push(bms);
      before[j].rssKiB = Math.max(before[j].rssKiB, brss);
      if (tree.transfer) before[j].transfer.push(await tree.transfer(sshd, remote, join(work, `bt-${i}`), size));
    }
  }

  const best = (xs: number[]) => Math.min(...xs);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const all = (xs: number[]) => xs.map((m) => (m / 1000).toFixed(2)).join(", ");
  const openssh = best(results.sftp);
  const row = (label: string, ms: number, tail = "") =>
    console.log(
      `  ${label.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(6)} s  ${mibps(size, ms).padStart(9)}  ${
        (openssh / ms).toFixed(2)
      }x sftp${tail}`,
    );
  console.log(
    `\n${kind}: database ${(dbBytes / 1048576).toFixed(0)} MiB, archive ${
      (size / 1048576).toFixed(1)
    } MiB, over loopback (best of ${RUNS}; throughput of the archive):`,
  );
  row("sqlbk transfer alone (no verification)", best(results.transfer));
  row(
    "sqlbk pull (download + verify)",
    best(results.sqlbk),
    `  peak RSS ${(rssKiB / 1024).toFixed(0)} MiB`,
  );
  for (const [j, tree] of trees.entries()) {
    if (before[j].transfer.length) row(`transfer alone from ${tree.dir}`, best(before[j].transfer));
    row(`sqlbk pull from ${tree.dir}`, best(before[j].pull), `  peak RSS ${(before[j].rssKiB / 1024).toFixed(0)} MiB`);
  }
  row("OpenSSH sftp get", openssh);
  row("scp", best(results.scp));
  row(`sftp + sha256sum + ${CODEC === "zstd" ? "zstd" : "gzip"} -dc + integrity_check`, best(results.byHand));
  console.log(
    `  sqlbk pull is ${(best(results.byHand) / best(results.sqlbk)).toFixed(2)}x faster than the hand pipeline`,
  );
  console.log(
    `  all runs: transfer ${all(results.transfer)} s; pull ${all(results.sqlbk)} s${
      trees.map((t, j) =>
        `; ${t.dir}: pull ${all(before[j].pull)} s${
          before[j].transfer.length ? `, transfer ${all(before[j].transfer)} s` : ""
        }`
      ).join("")
    }; sftp ${all(results.sftp)} s; scp ${all(results.scp)} s; by hand ${all(results.byHand)} s`,
  );
  if (trees.length) {
    console.log(
      `  medians of the pulls (the order rotated every run): this tree ${(median(results.sqlbk) / 1000).toFixed(2)} s${
        trees.map((t, j) => `, ${t.dir} ${(median(before[j].pull) / 1000).toFixed(2)} s`).join("")
      }`,
    );
  }
  console.log("  targets: transfer >= 0.90x sftp; pull no slower than before; peak RSS < 150 MiB");
}

/** The transfer alone (connect + download, as above) of another tree with the OpenSSH transport, or none. */
async function _transferOf(dir: string) {
  if (!(await Deno.stat(join(dir, "src/pull/ssh_process.ts")).then(() => true, () => false))) return {};
  const transport = await import(pathToFileURL(join(resolve(dir), "src/pull/transport.ts")).href);
  const download = await import(pathToFileURL(join(resolve(dir), "src/pull/download.ts")).href);
  return {
    transfer: async (sshd: Sshd, remote: string, local: string, size: number) => {
      const t0 = performance.now();
      {
        await using session = await transport.connectSftp(sshdConnectOptions(sshd));
        // Trees from before the options object took the local path take it positionally.
        if (download.downloadRange.length === 4) await download.downloadRange(session, remote, local, { size });
        else await download.downloadRange(session, remote, { localPath: local, size });
      }
      const ms = performance.now() - t0;
      await Deno.remove(local);
      return ms;
    },
  };
}

const work = await Deno.makeTempDir({ prefix: "sqlbk-bench-" });
await using sshd = await startSshd();
try {
  for (const kind of values.data.split(",")) {
    if (!["text", "blobs", "app"].includes(kind)) throw new Error(`--data: unknown kind "${kind}" (text, blobs, app)`);
    await bench(sshd, work, kind);
  }
} finally {
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
