/**
 * Issue 10, point 7: backups dated further in the future than the clock-skew allowance
 * (a compromised server, a clock that jumped) are never chosen as the newest, and retention
 * (server `keep_last`, pull `--keep-last`) never deletes a genuine copy because of them.
 */

import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { DENO_DIR, listDir, makeDatabase, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";
import { formatTimestamp, FUTURE_SKEW_MS, isFromTheFuture, latestPerDatabase, parseBackupName } from "../src/naming.ts";
import { chooseLatest } from "../src/pull/pull.ts";
import { applyRetention } from "../src/retention.ts";
import { runBackup } from "../src/job.ts";

const FUTURE = ["app-2099-01-01T00-00-00Z-online.bck.gz", "app-2099-01-02T00-00-00Z-online.bck.gz"];

/** A name of database `app` dated `offsetMs` from now. */
function dated(offsetMs: number, strategy = "online"): string {
  return `app-${formatTimestamp(new Date(Date.now() + offsetMs))}-${strategy}.bck.gz`;
}

Deno.test("isFromTheFuture() allows the clock skew and no more; chooseLatest() and latestPerDatabase() skip the rest", () => {
  const now = Date.parse("2025-07-01T10:00:00Z");
  const at = (iso: string) => parseBackupName(`app-${iso}-online.bck.gz`)!;
  assertEquals(FUTURE_SKEW_MS, 10 * 60_000);
  assertEquals(isFromTheFuture(at("2025-07-01T10-09-59Z"), now), false);
  assertEquals(isFromTheFuture(at("2025-07-01T10-10-01Z"), now), true);

  const genuine = dated(-3_600_000);
  const skewed = dated(5 * 60_000); // within the allowance: a server clock slightly ahead
  const e = (name: string) => ({ name, size: 1, mtime: 0, isFile: true });
  const warned: string[] = [];
  const chosen = chooseLatest([e(genuine), e(skewed), ...FUTURE.map(e)], { onFuture: (b) => warned.push(b.name) });
  assertEquals(chosen.get("app")?.name, skewed);
  assertEquals(warned, FUTURE);
  assertEquals(latestPerDatabase([genuine, ...FUTURE]).get("app")?.name, genuine);
  // Only future names: nothing to pull for that database.
  assertEquals(chooseLatest(FUTURE.map(e)).size, 0);
});

Deno.test("server keep_last never deletes a genuine backup because of names dated in the future", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 50 });
  const backupDir = dir.join("backups");
  await Deno.mkdir(backupDir);
  for (const name of FUTURE) await Deno.writeTextFile(join(backupDir, name), "planted");
  const published: string[] = [];
  for (let i = 3; i >= 1; i--) {
    const r = await runBackup({ sourcePath: source, backupDir, strategy: "vacuum", keepLast: 2 }, {
      startTime: new Date(Date.now() - i * 60_000),
    });
    published.push(r.file);
    assert(!r.deleted.some((d) => FUTURE.includes(d)), "future names are not retention's to delete");
  }
  const archives = (await listDir(backupDir)).filter((n) => n.endsWith(".bck.gz"));
  assertEquals(archives, [...published.slice(1), ...FUTURE].sort(), "the two newest genuine ones are kept");
  // applyRetention() directly: the future names count for nothing.
  assertEquals(await applyRetention(backupDir, "app", { keepLast: 1, protect: published[2] }), [published[1]]);

  // list and status: the newest is the newest genuine backup.
  const list = await sqlbk(["list", backupDir, "--json"]);
  assertEquals(list.code, 0, list.stderr);
  const rows = list.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(rows.filter((r) => r.latest).map((r) => r.file), [published[2]]);
  assertEquals(rows.filter((r) => r.future).map((r) => r.file), FUTURE);
  const status = await sqlbk(["status", backupDir, "--json"]);
  assertEquals(status.code, 0, status.stdout + status.stderr);
  assertEquals(JSON.parse(status.stdout.trim().split("\n")[0]).newest.file, published[2]);
});

Deno.test("sqlbk pull skips backups dated in the future with a warning and --keep-last keeps the genuine copies", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const env = { HOME: dir.path, SSH_AUTH_SOCK: "", DENO_DIR };
  const local = dir.join("p");
  const genuine = [dated(-3 * 3_600_000), dated(-2 * 3_600_000)];
  for (const name of genuine) {
    await placeBackup(s.remoteDir, name, { rows: 10 });
    const out = await sqlbk(pullArgs(s, local, "--keep-last", "2"), { env });
    assertEquals(out.code, 0, out.stderr);
  }
  // The server now offers names dated 2099: two runs of --keep-last 2 must keep both genuine copies.
  for (const name of FUTURE) await placeBackup(s.remoteDir, name, { rows: 3 });
  for (let run = 0; run < 2; run++) {
    const out = await sqlbk(pullArgs(s, local, "--keep-last", "2", "--json"), { env });
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stderr, `warning: skipping "${FUTURE[1]}"`);
    const result = JSON.parse(out.stdout.trim());
    assertEquals([result.file, result.skipped], [genuine[1], true]);
  }
  assertEquals((await listDir(local)).filter((n) => n.endsWith(".bck.gz")), genuine);
});
