import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { clientEnv, jsonLines, listDir, run, sqlbk, sqlite3, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";
import { sha256File } from "../src/hash.ts";
import { formatVerifiedMarker, parseVerifiedMarker, readVerifiedMarker } from "../src/verified_marker.ts";
import { parseSidecar } from "../src/verify.ts";

const NAME = "app-2025-03-01T00-00-00Z-online.bck.gz";
/**
 * A gzip backup with its server sidecar of a database whose index no longer matches its
 * table: `quick_check` says ok, `integrity_check` finds the missing index entries.
 */
async function placeBrokenIndexBackup(dir: string, work: string): Promise<void> {
  const db = join(work, "broken.db");
  await sqlite3(
    db,
    `CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
     CREATE INDEX users_name ON users(name);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
     INSERT INTO users(name, email) SELECT 'user' || i, 'u' || i || '@example.com' FROM n;
     PRAGMA writable_schema = ON;
     UPDATE sqlite_schema SET sql = 'CREATE INDEX users_name ON users(email)' WHERE name = 'users_name';
     PRAGMA writable_schema = OFF;`,
  );
  assertEquals(await sqlite3(db, "PRAGMA quick_check"), "ok");
  assert((await sqlite3(db, "PRAGMA integrity_check")) !== "ok");
  const gz = await run("sh", ["-c", `gzip -c '${db}' > '${join(dir, NAME)}'`]);
  assertEquals(gz.code, 0, gz.stderr);
  await Deno.writeTextFile(join(dir, `.${NAME}.sha256`), `${await sha256File(join(dir, NAME))}  ${NAME}\n`);
}

Deno.test("the pull's mark: sha256sum format plus the check, and a checksum alone is no mark", () => {
  const hex = "ab".repeat(32);
  const text = formatVerifiedMarker(NAME, { sha256: hex, check: "quick" });
  assertEquals(text, `${hex}  ${NAME}\n# verified by sqlbk pull: check=quick\n`);
  assertEquals(parseVerifiedMarker(text, NAME), { sha256: hex, check: "quick" });
  assertEquals(parseSidecar(text, "x", { expectedName: NAME }), hex); // the comment line is ignored, as sha256sum -c does
  assertEquals(parseVerifiedMarker(`${hex}  ${NAME}\n`, NAME), null);
  assertEquals(parseVerifiedMarker(`${hex}  other.bck.gz\n# verified by sqlbk pull: check=full\n`, NAME), null);
});

Deno.test("sha256sum -c accepts the pull's mark", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(dir.join(NAME), "data");
  await Deno.writeTextFile(
    dir.join(`${NAME}.sha256`),
    formatVerifiedMarker(NAME, { sha256: await sha256File(dir.join(NAME)), check: "full" }),
  );
  const out = await run("sha256sum", ["-c", `${NAME}.sha256`], { cwd: dir.path });
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stdout, `${NAME}: OK`);
});

Deno.test("a copy that passed only --check quick is verified again by a full pull, which finds the broken index and keeps the copy", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBrokenIndexBackup(s.remoteDir, dir.path);
  const local = dir.join("pulled");

  const quick = await sqlbk(pullArgs(s, local, "--json", "--check", "quick"), { env: clientEnv(dir.path) });
  assertEquals(quick.code, 0, quick.stderr);
  assertEquals(jsonLines(quick.stdout)[0].check, "quick");
  assertEquals((await readVerifiedMarker(local, NAME))?.check, "quick");
  const listed = await sqlbk(["list", local, "--json"]);
  assertEquals(jsonLines(listed.stdout).map((r) => [r.verified, r.verifiedCheck, r.checksum]), [[true, "quick", true]]);
  // status of the server, from a pull host whose [pull] local_dir holds the copy: the check it passed.
  const config = dir.join("pull.toml");
  await Deno.writeTextFile(config, `[pull]\nlocal_dir = ${JSON.stringify(local)}\n`);
  const connection = [
    "--port",
    String(s.port),
    "-i",
    s.clientKey,
    "--known-hosts",
    s.knownHosts,
    "--ssh-config",
    s.sshConfig,
  ];
  const status = await sqlbk(
    ["status", `${s.user}@127.0.0.1:${s.remoteDir}`, "-c", config, ...connection, "--max-age", "100000h"],
    { env: clientEnv(dir.path) },
  );
  assertEquals(status.code, 0, status.stderr);
  assertStringIncludes(status.stdout.split("\n")[1], "quick");

  // Another quick pull skips it; the default (full) pull does not.
  const again = await sqlbk(pullArgs(s, local, "--json", "--check", "quick"), { env: clientEnv(dir.path) });
  assertEquals(again.code, 0, again.stderr);
  assertEquals(jsonLines(again.stdout)[0].skipped, true);
  const full = await sqlbk(pullArgs(s, local), { env: clientEnv(dir.path) });
  assertEquals(full.code, 3, full.stderr);
  assertStringIncludes(full.stderr, "passed only the quick check");
  assertStringIncludes(full.stderr, "users_name");
  // The copy that passed quick stays, still marked quick, never marked full.
  assertEquals((await readVerifiedMarker(local, NAME))?.check, "quick");
  assertEquals((await listDir(local)).filter((n) => !n.startsWith(".")), [NAME, `${NAME}.sha256`]);
});

Deno.test("a pull verifies a copy whose checksum file came from the server, and fetches again a copy damaged since its pull", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NAME, { rows: 30, sidecar: false });
  const remote = join(s.remoteDir, NAME);
  const hash = await sha256File(remote);
  await Deno.writeTextFile(join(s.remoteDir, `.${NAME}.sha256`), `${hash}  ${NAME}\n`);
  const local = dir.join("pulled");
  await Deno.mkdir(local);

  // The archive and the server's checksum copied by hand: a checksum, not a verification.
  await Deno.copyFile(remote, join(local, NAME));
  await Deno.copyFile(join(s.remoteDir, `.${NAME}.sha256`), join(local, `.${NAME}.sha256`));
  await Deno.writeTextFile(join(local, `${NAME}.sha256`), `${hash}  ${NAME}\n`);
  const before = await sqlbk(["list", local]);
  assertStringIncludes(before.stdout.split("\n")[1], "checksum");
  const first = await sqlbk(pullArgs(s, local, "--json"), { env: clientEnv(dir.path) });
  assertEquals(first.code, 0, first.stderr);
  assertEquals([jsonLines(first.stdout)[0].skipped, jsonLines(first.stdout)[0].check], [false, "full"]);
  assertEquals(await readVerifiedMarker(local, NAME), { sha256: hash, check: "full" });
  const after = await sqlbk(["list", local]);
  assertStringIncludes(after.stdout.split("\n")[1], "full");

  // Now verified and unchanged: skipped.
  const second = await sqlbk(pullArgs(s, local, "--json"), { env: clientEnv(dir.path) });
  assertEquals(jsonLines(second.stdout)[0].skipped, true);

  // Damaged in place (same size): fetched again, and the copy is whole again.
  const data = await Deno.readFile(join(local, NAME));
  data.fill(0, 100, 164);
  await Deno.writeFile(join(local, NAME), data);
  const third = await sqlbk(pullArgs(s, local, "--json"), { env: clientEnv(dir.path) });
  assertEquals(third.code, 0, third.stderr);
  assertStringIncludes(third.stderr, "changed since it was verified");
  assertEquals(jsonLines(third.stdout)[0].skipped, false);
  assertEquals(await sha256File(join(local, NAME)), hash);
});

Deno.test("list shows a server's backup directory as checksummed, not verified", async () => {
  await using dir = await tempDir();
  await placeBackup(dir.path, NAME, { rows: 5 });
  const out = await sqlbk(["list", dir.path, "--json"]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(jsonLines(out.stdout).map((r) => [r.verified, r.verifiedCheck, r.checksum]), [[false, null, true]]);
  const text = await sqlbk(["list", dir.path]);
  assertStringIncludes(text.stdout.split("\n")[1], "checksum");
  const status = await sqlbk(["status", dir.path, "--max-age", "100000h"]);
  assertEquals(status.code, 0, status.stderr);
  assertStringIncludes(status.stdout.split("\n")[1], "checksum");
  const json = JSON.parse((await sqlbk(["status", dir.path, "--max-age", "100000h", "--json"])).stdout);
  assertEquals([json.newest.verified, json.newest.verifiedCheck, json.newest.checksum], [false, null, true]);
});

Deno.test('backup with check = "none" never deletes older backups, and says so', async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await sqlite3(db, "CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('a');");
  const backups = dir.join("b");
  const first = await sqlbk(["backup", db, "-d", backups, "--keep-last", "1", "-q"]);
  assertEquals(first.code, 0, first.stderr);
  await new Promise((r) => setTimeout(r, 1100)); // a name one second later
  const second = await sqlbk(["backup", db, "-d", backups, "--keep-last", "1", "--check", "none", "--json"]);
  assertEquals(second.code, 0, second.stderr);
  assertEquals(JSON.parse(second.stdout).deleted, []);
  assertStringIncludes(second.stderr, 'keep_last 1 not applied: this backup was not checked (check = "none")');
  assertEquals((await listDir(backups)).filter((n) => n.endsWith(".bck.gz")).length, 2);
  // A checked backup rotates again.
  await new Promise((r) => setTimeout(r, 1100));
  const third = await sqlbk(["backup", db, "-d", backups, "--keep-last", "1", "--json"]);
  assertEquals(third.code, 0, third.stderr);
  assertEquals(JSON.parse(third.stdout).deleted.length, 2);
});
