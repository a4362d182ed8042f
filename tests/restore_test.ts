import { assert, assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { basename, join } from "node:path";
import { describe, listDir, makeDatabase, sqlbk, tempDir } from "./support/db.ts";
import { flipBytes, placeBackup } from "./support/backups.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";

Deno.test("sqlbk verify passes sound backups and exits 3 when any fails", async () => {
  await using dir = await tempDir();
  const good = await placeBackup(dir.path, NAME, { rows: 12 });
  const plain = dir.join("auth-20250101T000000Z.db");
  await makeDatabase(plain, { journal: "delete", rows: 3 });
  let out = await sqlbk(["verify", good, plain]);
  assertEquals(out.code, 0, out.stderr);
  assertMatch(
    out.stdout,
    new RegExp(`^ok ${good} sha256=[0-9a-f]{64} \\(checksum matches\\) check=full \\(\\d+ ms\\)\\n`),
  );

  const bad = await placeBackup(dir.path, "app-2025-04-01T00-00-00Z-vacuum.bck.gz", { rows: 12 });
  await flipBytes(bad);
  out = await sqlbk(["verify", good, bad, "--json"]);
  assertEquals(out.code, 3);
  const rows = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(rows.map((r) => r.ok), [true, false]);
  assertStringIncludes(out.stderr, "failed verification");
  // No temp files are left behind.
  assert((await listDir(dir.path)).every((n) => !n.startsWith(".sqlbk-verify") || n === ".sqlbk-verify.lock"));

  out = await sqlbk(["verify", dir.join("missing.bck.gz")]);
  assertEquals(out.code, 1);
  out = await sqlbk(["verify"]);
  assertEquals(out.code, 2);
});

Deno.test("sqlbk restore writes the database, refuses to replace without --force, and keeps the old one with it", async () => {
  await using dir = await tempDir();
  const backup = await placeBackup(dir.path, NAME, { rows: 7 });
  const dest = dir.join("restored", "app.db");
  await Deno.mkdir(dir.join("restored"));
  let out = await sqlbk(["restore", backup, "--to", dest]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals((await describe(dest)).counts.items, 7);

  // An existing file is not replaced without --force.
  await Deno.writeTextFile(dest, "the old database");
  out = await sqlbk(["restore", backup, "--to", dest]);
  assertEquals(out.code, 2);
  assertStringIncludes(out.stderr, "--force");
  assertEquals(await Deno.readTextFile(dest), "the old database");

  out = await sqlbk(["restore", backup, "--to", dest, "--force", "--json"]);
  assertEquals(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  assertMatch(result.previous, /app\.db\.bak-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$/);
  assertEquals(await Deno.readTextFile(result.previous), "the old database");
  assertEquals((await describe(dest)).counts.items, 7);
  // Only the restore lock stays beside the database: no temp, -wal or -shm file.
  assertEquals(await listDir(dir.join("restored")), [".sqlbk-restore.lock", "app.db", basename(result.previous)]);
});

Deno.test("sqlbk restore refuses a database in use and a corrupt backup, touching nothing", async () => {
  await using dir = await tempDir();
  const backup = await placeBackup(dir.path, NAME, { rows: 7 });
  const dest = dir.join("app.db");
  await makeDatabase(dest, { rows: 2, journal: "delete" });
  await Deno.writeTextFile(`${dest}-wal`, "");
  let out = await sqlbk(["restore", backup, "--to", dest, "--force"]);
  assertEquals(out.code, 1);
  assertStringIncludes(out.stderr, "app.db-wal");
  assertStringIncludes(out.stderr, "in use");
  await Deno.remove(`${dest}-wal`);

  await flipBytes(backup);
  out = await sqlbk(["restore", backup, "--to", dest, "--force"]);
  assertEquals(out.code, 3);
  assertEquals((await describe(dest)).counts.items, 2);
  assertEquals((await listDir(dir.path)).sort(), [".sqlbk-restore.lock", "app.db", NAME, `${NAME}.sha256`].sort());

  out = await sqlbk(["restore", backup]);
  assertEquals(out.code, 2);
  assertStringIncludes(out.stderr, "--to");
});

Deno.test("sqlbk list shows local backups by database, newest marked, and --json", async () => {
  await using dir = await tempDir();
  await placeBackup(dir.path, "app-2025-01-01T00-00-00Z-online.bck.gz", { rows: 3 });
  await placeBackup(dir.path, NAME, { rows: 3, sidecar: false });
  await Deno.writeTextFile(join(dir.path, "notes.txt"), "x");
  let out = await sqlbk(["list", dir.path]);
  assertEquals(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split("\n");
  assertMatch(lines[0], /^DATABASE\s+TIME\s+STRATEGY\s+SIZE\s+VERIFIED\s+FILE$/);
  assertMatch(
    lines[1],
    /^app\s+2025-01-01T00:00:00Z\s+online\s+\S+ \S+\s+checksum\s+app-2025-01-01T00-00-00Z-online\.bck\.gz$/,
  );
  assertMatch(lines[2], new RegExp(`^app\\s+2025-03-01T00:00:00Z\\s+vacuum\\s+\\S+ \\S+\\s+no\\s+${NAME} \\*$`));
  out = await sqlbk(["list", dir.path, "--json"]);
  const rows = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
  // A checksum file beside a backup is not a pull's mark of verification.
  assertEquals(rows.map((r) => [r.file, r.verified, r.checksum, r.latest]), [
    ["app-2025-01-01T00-00-00Z-online.bck.gz", false, true, false],
    [NAME, false, false, true],
  ]);
  // Whole seconds, as status --json writes them.
  assertEquals(rows.map((r) => r.time), ["2025-01-01T00:00:00Z", "2025-03-01T00:00:00Z"]);
  out = await sqlbk(["list", dir.join("missing")]);
  assertEquals(out.code, 1);
  assertStringIncludes(out.stderr, "no such directory");
});
