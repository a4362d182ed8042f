/**
 * Review 2, items 1.8 and section 2: `verify` of a backup in a directory this user cannot
 * write (a read-only mount, a monitoring user) says so and takes `--temp-dir`; `restore`
 * into such a directory says so; a directory given as a backup file or as the target is
 * refused naming it. Run as `nobody` (root ignores file modes).
 */

import { assert, assertEquals } from "./support/assert.ts";
import { listDir, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { unprivileged } from "./support/nobody.ts";

const NAME = "app-2025-07-01T10-30-00Z-online.bck.gz";

Deno.test("verify in a directory nobody may write: exit 2 with a --temp-dir hint; --temp-dir verifies and sweeps there", async () => {
  await using dir = await tempDir();
  await using user = await unprivileged();
  await Deno.chmod(dir.path, 0o755);
  const ro = dir.join("ro");
  await Deno.mkdir(ro);
  const archive = await placeBackup(ro, NAME, { rows: 50 });
  await Deno.chmod(ro, 0o555);
  const roBefore = await listDir(ro);
  const refused = await user.sqlbk(["verify", archive]);
  assertEquals(refused.code, 2, refused.stderr);
  assertEquals(
    refused.stderr,
    `error: Cannot verify "${archive}": cannot write in its directory "${ro}" (permission denied), where the ` +
      `decompressed copy is checked; give --temp-dir DIR, a writable directory with room for the database\n`,
  );
  // --temp-dir: checked there, and a killed run's copy left there is swept under the lock.
  const temp = dir.join("tmp");
  await Deno.mkdir(temp);
  await Deno.chmod(temp, 0o777);
  const stale = await user.sqlbk(["verify", archive, "--temp-dir", ro]); // a temp dir that cannot be written
  assertEquals(stale.code, 2, stale.stderr);
  assertEquals(
    stale.stderr,
    `error: Cannot verify "${archive}": cannot write in the temp dir "${ro}" (permission denied); choose a writable one\n`,
  );
  await Deno.writeTextFile(`${temp}/.sqlbk-verify-0123abcd.db`, "left by a killed run");
  await Deno.chmod(`${temp}/.sqlbk-verify-0123abcd.db`, 0o666);
  const ok = await user.sqlbk(["verify", archive, "--temp-dir", temp, "--json"]);
  assertEquals(ok.code, 0, ok.stderr);
  const result = JSON.parse(ok.stdout);
  assertEquals([result.ok, result.checksumVerified, result.check], [true, true, "full"]);
  assertEquals(await listDir(temp), [".sqlbk-verify.lock"]);
  const probed = await user.sqlbk([
    "verify",
    archive,
    "--temp-dir",
    temp,
    "--probe",
    "SELECT count(*) = 50 FROM items",
  ]);
  assertEquals(probed.code, 0, probed.stderr);
  assertEquals(await listDir(temp), [".sqlbk-verify.lock"]);
  assertEquals(await listDir(ro), roBefore); // nothing was ever written beside the archive
  if (user.dropsRoot) {
    const lock = await Deno.stat(`${temp}/.sqlbk-verify.lock`);
    assert(lock.uid !== 0, "the runs really were unprivileged");
  }
  // A --temp-dir that is missing or a file is a usage error before anything is read.
  for (
    const [bad, why] of [[dir.join("gone"), "it does not exist (give an existing, writable directory)"], [
      archive,
      "it is not a directory",
    ]]
  ) {
    const out = await sqlbk(["verify", archive, "--temp-dir", bad]);
    assertEquals(out.code, 2, out.stderr);
    assertEquals(out.stderr, `error: Invalid --temp-dir "${bad}": ${why}\n`);
  }
  await Deno.chmod(ro, 0o755);
});

Deno.test("restore into a directory nobody may write: exit 2 naming it, nothing written", async () => {
  await using dir = await tempDir();
  await using user = await unprivileged();
  await Deno.chmod(dir.path, 0o755);
  const archive = await placeBackup(dir.path, NAME, { rows: 20 });
  const ro = dir.join("ro");
  await Deno.mkdir(ro, { mode: 0o555 });
  await Deno.chmod(ro, 0o555);
  const out = await user.sqlbk(["restore", archive, "--to", `${ro}/app.db`]);
  assertEquals(out.code, 2, out.stderr);
  assertEquals(
    out.stderr,
    `error: Cannot restore to "${ro}/app.db": cannot write in "${ro}" (permission denied), where the database is ` +
      `written before it is renamed into place; restore as a user who may write there, or to another directory\n`,
  );
  assertEquals(await listDir(ro), []);
  await Deno.chmod(ro, 0o755);
});

Deno.test("a directory given as the backup (verify, restore) or as restore's target is refused, exit 2, naming it", async () => {
  await using dir = await tempDir();
  const archive = await placeBackup(dir.path, NAME, { rows: 20 });
  const before = await listDir(dir.path);
  const verify = await sqlbk(["verify", dir.path]);
  assertEquals(verify.code, 2, verify.stderr);
  assertEquals(
    verify.stderr,
    `error: Cannot verify "${dir.path}": it is a directory; give backup files, e.g. ${dir.path}/*.bck.gz\n`,
  );
  const restore = await sqlbk(["restore", dir.path, "--to", dir.join("x.db")]);
  assertEquals(restore.code, 2, restore.stderr);
  assertEquals(
    restore.stderr,
    `error: Cannot restore "${dir.path}": it is a directory; give one backup file, e.g. ${dir.path}/*.bck.gz\n`,
  );
  await Deno.mkdir(dir.join("d"));
  for (const force of [[], ["--force"]]) {
    const out = await sqlbk(["restore", archive, "--to", dir.join("d"), ...force]);
    assertEquals(out.code, 2, out.stderr);
    assertEquals(
      out.stderr,
      `error: Cannot restore to "${dir.join("d")}": it is a directory; give the database file to write, e.g. "${
        dir.join("d", "app.db")
      }"\n`,
    );
  }
  assertEquals(await listDir(dir.path), [...before, "d"].sort());
  assertEquals(await listDir(dir.join("d")), []);
});

Deno.test("verify of a backup in a directory nobody may enter, or that nobody may read, names the file, exit 1", async () => {
  await using dir = await tempDir();
  await using user = await unprivileged();
  await Deno.chmod(dir.path, 0o755);
  const locked = dir.join("locked");
  await Deno.mkdir(locked);
  const archive = await placeBackup(locked, NAME, { rows: 10 });
  await Deno.chmod(locked, 0o000); // also shuts out its owner, when the tests do not run as root
  const out = await user.sqlbk(["verify", archive]);
  await Deno.chmod(locked, 0o755);
  assertEquals(out.code, 1, out.stderr);
  assertEquals(
    out.stderr,
    `error: Cannot read backup "${archive}": permission denied (on it or a directory above it)\n`,
  );
  // A file this user may not read, in a directory it may enter, is named too.
  await Deno.chmod(archive, 0o000);
  const unreadable = await user.sqlbk(["verify", archive]);
  await Deno.chmod(archive, 0o644);
  assertEquals(unreadable.code, 1, unreadable.stderr);
  assertEquals(
    unreadable.stderr,
    `error: Cannot read backup "${archive}": permission denied (make it readable for this user)\n`,
  );
});

Deno.test("pull --to a directory nobody may write: exit 2 naming it, before ssh starts, nothing written", async () => {
  await using dir = await tempDir();
  await using user = await unprivileged();
  await Deno.chmod(dir.path, 0o755);
  const ro = dir.join("ro");
  await Deno.mkdir(ro);
  await Deno.chmod(ro, 0o555);
  // Port 9 on loopback: were ssh started, the error would be a refused connection, not this.
  const out = await user.sqlbk(["pull", "sftp://backup@127.0.0.1:9/srv/backups", "--to", ro]);
  await Deno.chmod(ro, 0o755);
  assertEquals(out.code, 2, out.stderr);
  assertEquals(
    out.stderr,
    `error: Cannot pull into "${ro}": cannot write in it (permission denied); pull as a user who may write there, ` +
      `or give --to a writable directory\n`,
  );
  assertEquals(await listDir(ro), []);
});

Deno.test("list and status of a directory nobody may read: one wording, exit 1, an object in status --json", async () => {
  await using dir = await tempDir();
  await using user = await unprivileged();
  await Deno.chmod(dir.path, 0o755);
  const locked = dir.join("locked");
  await Deno.mkdir(locked);
  await placeBackup(locked, NAME, { rows: 10 });
  await Deno.chmod(locked, 0o000);
  const line = `error: Cannot read backups in "${locked}": permission denied (this user must be able to read and ` +
    `enter it)\n`;
  const list = await user.sqlbk(["list", locked]);
  const status = await user.sqlbk(["status", locked, "--json"]);
  await Deno.chmod(locked, 0o755);
  assertEquals([list.code, list.stderr], [1, line]);
  assertEquals([status.code, status.stderr], [1, line]);
  const row = JSON.parse(status.stdout);
  assertEquals([row.database, row.location, row.state, row.error], [null, locked, "unreadable", line.slice(7, -1)]);
});
