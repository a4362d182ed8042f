/**
 * Crash leftovers on the pull host: a real `sqlbk pull` (and `sqlbk verify`) SIGKILLed
 * mid-download and mid-verification leaves temp files; the next run in that directory
 * sweeps them (its own names only, never those of a run still going) and leaves only
 * final files.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { join } from "node:path";
import { clientEnv, listDir, ROOT, spawnSqlbk, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { pullArgs, type Sshd, startSshd } from "./support/sshd.ts";
import { exists } from "../src/fs.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
const SCRIPT = join(ROOT, "tests", "support", "bad_sftpd.py");
/** A probe that runs for minutes: a run is inside its verification for as long as we need. */
const SLOW_PROBE =
  "SELECT count(*) >= 0 FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1e12) SELECT x FROM c)";
/** What a finished pull may leave: the archive, its sidecar, the latest db, the lock files. */
const FINAL = [".sqlbk-pull.lock", ".sqlbk-verify.lock", NAME, `${NAME}.sha256`];

async function waitFor(what: string, cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 120_000;
  while (!(await cond())) {
    assert(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const hasVerifyTemp = async (dir: string) =>
  (await listDir(dir).catch((): string[] => [])).some((n) => /^\.sqlbk-(verify|probe)-[0-9a-f]{8}\.db$/.test(n));

async function kill(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await child.output();
}

Deno.test("pulls SIGKILLed mid-download and mid-verification leave temp files the next pull sweeps", async () => {
  await using dir = await tempDir();
  const served = dir.join("served");
  await Deno.mkdir(served);
  const archive = await placeBackup(served, NAME, { rows: 20_000, payload: 200 });
  const size = (await Deno.stat(archive)).size;
  const local = dir.join("p");
  const partial = join(local, `${NAME}.partial`);

  // 1. Mid-download: the server pauses (once) after a quarter; the streaming gunzip has a temp db.
  const marker = dir.join("paused");
  const pausing: Sshd = await startSshd({
    sftpSubsystem: `/usr/bin/python3 ${SCRIPT} ${served} pause-once:${Math.floor(size / 4 / 4096) * 4096}:${marker}`,
  });
  await using _pausing = pausing;
  const first = spawnSqlbk(pullArgs(pausing, local, "--concurrency", "1", "--chunk-size", "4096"), {
    env: clientEnv(dir.path),
  });
  await waitFor("the pause", () => exists(marker));
  await waitFor("a verification temp file", () => hasVerifyTemp(local));
  await kill(first);
  const afterDownloadKill = await listDir(local);
  assert(afterDownloadKill.some((n) => n.startsWith(".sqlbk-verify-")), afterDownloadKill.join(", "));

  // 2. Mid-verification: the whole archive is here, a probe keeps the run verifying.
  await using server = await startSshd({ sftpSubsystem: `/usr/bin/python3 ${SCRIPT} ${served} ok` });
  const second = spawnSqlbk(pullArgs(server, local, "--decompress", "--probe", SLOW_PROBE), {
    env: clientEnv(dir.path),
  });
  await waitFor("the verification", async () => (await exists(partial)) && (await Deno.stat(partial)).size === size);
  await kill(second);
  const temps = (await listDir(local)).filter((n) => n.startsWith(".sqlbk-verify-"));
  assert(temps.length >= 1, `no temp file after the kill mid-verification: ${await listDir(local)}`);

  // 3. What a kill inside --decompress or the sidecar write leaves (too short to hit by timing).
  await Deno.writeFile(join(local, ".sqlbk-app-latest-0a1b2c3d.db.tmp"), new Uint8Array(4096));
  await Deno.writeFile(join(local, ".sqlbk-app-latest-0a1b2c3d.db.tmp-journal"), new Uint8Array(16));
  await Deno.writeTextFile(join(local, `${NAME}.sha256.tmp`), "half a line");
  // Files that are not ours stay.
  await Deno.writeTextFile(join(local, ".sqlbk-verify-notes.txt"), "mine");
  await Deno.writeTextFile(join(local, "notes.sha256.tmp"), "mine");

  const next = await sqlbk(pullArgs(server, local, "--decompress"), { env: clientEnv(dir.path) });
  assertEquals(next.code, 0, next.stderr);
  assertEquals(
    await listDir(local),
    [...FINAL, ".sqlbk-verify-notes.txt", "app-latest.db", "notes.sha256.tmp"].sort(),
  );
  assertEquals(await Deno.readFile(join(local, NAME)), await Deno.readFile(archive));
});

Deno.test("a verify SIGKILLed mid-check is swept by the next verify or pull, never while one runs", async () => {
  await using dir = await tempDir();
  const store = dir.join("store");
  await Deno.mkdir(store);
  const archive = await placeBackup(store, NAME, { rows: 2000 });

  // A verify killed inside its probe leaves its copy.
  const killed = spawnSqlbk(["verify", archive, "--probe", SLOW_PROBE], { env: clientEnv(dir.path) });
  await waitFor("the probe copy", () => hasVerifyTemp(store));
  await kill(killed);
  const leftover = (await listDir(store)).filter((n) => n.startsWith(".sqlbk-probe-"));
  assertEquals(leftover.length, 1);

  // The next verify sweeps it (no run was going); while that one runs, its copy is kept
  // whatever another run does meanwhile.
  const running = spawnSqlbk(["verify", archive, "--probe", SLOW_PROBE], { env: clientEnv(dir.path) });
  try {
    const probeCopies = async () =>
      (await listDir(store)).filter((n) => n.startsWith(".sqlbk-probe-") && n !== leftover[0]);
    await waitFor("the running verify's probe copy", async () => (await probeCopies()).length === 1);
    assert(!(await listDir(store)).includes(leftover[0]), "the killed run's copy was not swept");
    const mine = await probeCopies();
    const other = await sqlbk(["verify", archive], { env: clientEnv(dir.path) });
    assertEquals(other.code, 0, other.stderr);
    assert((await listDir(store)).includes(mine[0]), "a running verify's copy was swept");
  } finally {
    await kill(running);
  }

  // With no run going, the next verify sweeps the second killed run's copy too.
  const again = await sqlbk(["verify", archive], { env: clientEnv(dir.path) });
  assertEquals(again.code, 0, again.stderr);
  assertEquals(await listDir(store), [".sqlbk-verify.lock", NAME, `${NAME}.sha256`]);
});
