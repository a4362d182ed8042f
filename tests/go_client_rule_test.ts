/**
 * Issue 10, point 9: the Go client sorts every name in the remote directory and takes the
 * last one. In a backup dir of one database, at every moment (before, during and after a
 * backup, and after a SIGKILL mid-backup), that must be the newest archive: everything
 * else sqlbk leaves is hidden (`.<archive>.tmp`, `.<archive>.sha256`, `.sqlbk.lock`,
 * `.sqlbk-*.snapshot`). The readers (pull, verify, list, status) read the hidden sidecar.
 */

import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { DENO_DIR, listDir, makeDatabase, run, spawnSqlbk, sqlbk, tempDir } from "./support/db.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";
import { runBackup } from "../src/job.ts";
import { latestPerDatabase } from "../src/naming.ts";

/** What the Go client picks: every name sorted by plain byte order, the last one. */
function goClientPick(names: string[]): string | undefined {
  const bytes = names.map((n) => ({ n, b: new TextEncoder().encode(n) }));
  bytes.sort((x, y) => {
    for (let i = 0; i < Math.min(x.b.length, y.b.length); i++) if (x.b[i] !== y.b[i]) return x.b[i] - y.b[i];
    return x.b.length - y.b.length;
  });
  return bytes.at(-1)?.n;
}

/** Asserts the Go rule on a listing: the last name is the newest archive; the rest is hidden or sorts before it. */
function assertGoRule(names: string[], moment: string): string {
  const newest = latestPerDatabase(names).get("app")?.name;
  assert(newest !== undefined, `${moment}: no archive in ${names.join(" ")}`);
  assertEquals(goClientPick(names), newest, `${moment}: ${names.join(" ")}`);
  for (const name of names) {
    if (name !== newest) assert(name.startsWith(".") || name < newest, `${moment}: "${name}" sorts after the newest`);
  }
  return newest;
}

function nextSecond(): Promise<void> {
  return new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
}

Deno.test("a backup dir obeys the Go client's sort-and-take-last rule before, during and after a backup", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 20_000, payload: 200 });
  const backupDir = dir.join("backups");
  const first = await runBackup({ sourcePath: source, backupDir, strategy: "vacuum" });
  assertEquals(assertGoRule(await listDir(backupDir), "after the first backup"), first.file);
  // sha256sum -c reads the hidden sidecar.
  const sums = await run("sha256sum", ["-c", `.${first.file}.sha256`], { cwd: backupDir });
  assertEquals(sums.code, 0, sums.stdout + sums.stderr);
  assertStringIncludes(sums.stdout, `${first.file}: OK`);

  await nextSecond();
  const seen = new Set<string>();
  const second = await runBackup(
    { sourcePath: source, backupDir, strategy: "online", pagesPerStep: 200, sleepInterval: "0s" },
    {
      onProgress: (p) => {
        const names: string[] = [];
        for (const e of Deno.readDirSync(backupDir)) names.push(e.name);
        assertEquals(assertGoRule(names, `during ${p.phase}`), first.file);
        for (const n of names) if (n.startsWith(".") && n !== ".sqlbk.lock") seen.add(n.replace(/-[0-9a-f]{8}\./, "."));
      },
    },
  );
  // Both phases were watched: the snapshot temp and the archive being written, both hidden.
  assert(seen.has(".sqlbk-app.snapshot"), [...seen].join(" "));
  assert(seen.has(`.${second.file}.tmp`), [...seen].join(" "));
  assertEquals(assertGoRule(await listDir(backupDir), "after the second backup"), second.file);
  assertEquals(
    await listDir(backupDir),
    [`.${first.file}.sha256`, `.${second.file}.sha256`, ".sqlbk.lock", first.file, second.file].sort(),
  );
});

Deno.test("after a SIGKILL mid-backup the Go client's pick is still the newest archive, and the next run sweeps", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 30_000, payload: 200 });
  const backupDir = dir.join("backups");
  const first = await sqlbk(["backup", "app.db", "-s", "vacuum", "-q"], { cwd: dir.path });
  assertEquals(first.code, 0, first.stderr);
  const published = assertGoRule(await listDir(backupDir), "after the first backup");
  await nextSecond();
  const child = spawnSqlbk(["backup", "app.db", "--pages-per-step", "5", "--sleep-interval", "2ms", "-q"], {
    cwd: dir.path,
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const names = await listDir(backupDir);
    assertGoRule(names, "while the killed run copies");
    const snap = names.find((n) => n.endsWith(".snapshot"));
    if (snap && (await Deno.stat(join(backupDir, snap))).size > 256 * 1024) break;
    if (Date.now() > deadline) throw new Error(`no snapshot appeared: ${names}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await child.output();
  // The state a kill between the sidecar and the archive would leave, too: a hidden sidecar alone.
  const orphan = "app-2025-01-01T00-00-00Z-online.bck.gz";
  await Deno.writeTextFile(join(backupDir, `.${orphan}.sha256`), `${"0".repeat(64)}  ${orphan}\n`);
  await Deno.writeTextFile(join(backupDir, `.${orphan}.tmp`), "partial");
  const after = await listDir(backupDir);
  assertEquals(assertGoRule(after, "after the kill"), published);
  assert(after.some((n) => n.endsWith(".snapshot")), after.join(" "));

  await nextSecond();
  const next = await sqlbk(["backup", "app.db", "-s", "vacuum"], { cwd: dir.path });
  assertEquals(next.code, 0, next.stderr);
  assert(/removed [34] leftover temp files/.test(next.stderr), next.stderr); // the snapshot (and its -journal), the two planted
  const file = next.stdout.trim().split("/").pop()!;
  assertEquals(assertGoRule(await listDir(backupDir), "after the next run"), file);
  assertEquals(
    await listDir(backupDir),
    [`.${file}.sha256`, `.${published}.sha256`, ".sqlbk.lock", file, published].sort(),
  );
});

Deno.test("pull, verify, list and status read the hidden sidecar of a sqlbk server's backup dir", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 100 });
  const result = await runBackup({ sourcePath: source, backupDir: s.remoteDir, strategy: "vacuum" });
  const sidecar = join(s.remoteDir, `.${result.file}.sha256`);
  assertEquals((await Deno.readTextFile(sidecar)).split(" ")[0], result.sha256);

  let out = await sqlbk(["verify", result.path]);
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stdout, "(checksum matches)");
  // A server's directory holds checksums: listed as such, not as verified copies.
  out = await sqlbk(["list", s.remoteDir, "--json"]);
  const listed = JSON.parse(out.stdout.trim());
  assertEquals([listed.checksum, listed.verified], [true, false]);
  out = await sqlbk(["status", s.remoteDir, "--json"]);
  assertEquals(JSON.parse(out.stdout.trim().split("\n")[0]).newest.verified, false);

  const env = { HOME: dir.path, SSH_AUTH_SOCK: "", DENO_DIR };
  out = await sqlbk(pullArgs(s, dir.join("p")), { env });
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stderr, "verified (checksum, decompression, full check in ");
  out = await sqlbk(["list", dir.join("p"), "--json"]);
  assertEquals([JSON.parse(out.stdout.trim()).verified, JSON.parse(out.stdout.trim()).verifiedCheck], [true, "full"]);

  // A sidecar that disagrees is read, and the pull fails verification.
  await Deno.writeTextFile(sidecar, `${"0".repeat(64)}  ${result.file}\n`);
  out = await sqlbk(["verify", result.path]);
  assertEquals(out.code, 3, out.stderr);
  out = await sqlbk(pullArgs(s, dir.join("q")), { env });
  assertEquals(out.code, 3, out.stderr);
  assertStringIncludes(out.stderr, "checksum file says 0000");
});
