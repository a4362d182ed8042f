/**
 * Issue 10, points 2 and 3: verification leaves no `-wal`/`-shm` files behind for archives
 * whose database header says WAL (the Go tool's online backups of WAL databases), a
 * restored database is one file in rollback-journal (DELETE) mode, and a backup that is
 * not a SQLite database with at least one page fails verification (exit 3) in `verify`,
 * `pull` and `restore`.
 */

import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { DENO_DIR, listDir, run, sqlbk, sqlite3, type TempDir, tempDir } from "./support/db.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";

const WAL_NAME = "app-2025-05-01T00-00-00Z-online.bck.gz";
const EMPTY_NAME = "app-2025-06-01T00-00-00Z-online.bck.gz";

/** Header bytes 18-19: 2,2 for WAL, 1,1 for a rollback journal. */
async function headerMode(path: string): Promise<number[]> {
  const bytes = await Deno.readFile(path);
  return [bytes[18], bytes[19]];
}

/** A WAL database made by the sqlite3 tool (its header says WAL, no -wal left), gzipped by gzip into `dir/name`. */
async function walArchive(dir: TempDir, target: string, name = WAL_NAME): Promise<string> {
  const db = dir.join(`wal-src-${crypto.randomUUID().slice(0, 8)}.db`);
  await sqlite3(
    db,
    `PRAGMA journal_mode=WAL;
CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
INSERT INTO items (body) SELECT hex(randomblob(50)) FROM c;`,
  );
  assertEquals(await headerMode(db), [2, 2], "the source's header says WAL");
  const path = join(target, name);
  const gz = await run("sh", ["-c", `gzip -c '${db}' > '${path}'`]);
  assertEquals(gz.code, 0, gz.stderr);
  await Deno.remove(db);
  return path;
}

/** Names in `dir` that a SQLite connection leaves beside a database. */
async function sqliteLeftovers(dir: string): Promise<string[]> {
  return (await listDir(dir)).filter((n) =>
    /-(wal|shm|journal)$/.test(n) || (n.startsWith(".sqlbk-verify") && n !== ".sqlbk-verify.lock")
  );
}

Deno.test("verify and restore leave no -wal/-shm for a WAL-header archive; the restore is one DELETE-mode file", async () => {
  await using dir = await tempDir();
  const store = dir.join("store");
  await Deno.mkdir(store);
  const archive = await walArchive(dir, store);
  // A plain .db snapshot (id grammar) whose header says WAL, verified in place.
  const plain = join(store, "app-20250501T000000Z.db");
  const gunzip = await run("sh", ["-c", `gzip -dc '${archive}' > '${plain}'`]);
  assertEquals(gunzip.code, 0, gunzip.stderr);
  assertEquals(await headerMode(plain), [2, 2]);

  let out = await sqlbk(["verify", archive, plain, "--probe", "SELECT count(*) = 500 FROM items"]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(await sqliteLeftovers(store), [], "verify left files behind");
  assertEquals(await headerMode(plain), [2, 2], "verify never changes the file it checks");

  for (const [source, to] of [[archive, "from-gz"], [plain, "from-db"]]) {
    const target = dir.join(to);
    await Deno.mkdir(target);
    out = await sqlbk(["restore", source, "--to", join(target, "app.db"), "--probe", "SELECT count(*) > 0 FROM items"]);
    assertEquals(out.code, 0, out.stderr);
    assertEquals(await listDir(target), [".sqlbk-restore.lock", "app.db"], `restore from ${to}`);
    assertEquals(await headerMode(join(target, "app.db")), [1, 1], "restored in rollback-journal mode");
    assertEquals(await sqlite3(join(target, "app.db"), "PRAGMA journal_mode;"), "delete");
    assertEquals(await sqlite3(join(target, "app.db"), "SELECT count(*) FROM items;"), "500");
  }
  assertEquals(await sqliteLeftovers(store), []);
});

Deno.test("pull of a WAL-header archive (with --decompress and a probe) leaves no -wal/-shm; the latest db is DELETE mode", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await walArchive(dir, s.remoteDir);
  const local = dir.join("pulled");
  const out = await sqlbk(pullArgs(s, local, "--decompress", "--probe", "SELECT count(*) = 500 FROM items"), {
    env: { HOME: dir.path, SSH_AUTH_SOCK: "", DENO_DIR },
  });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(await sqliteLeftovers(local), [], "pull left files behind");
  assert((await listDir(local)).includes(WAL_NAME));
  assertEquals(await headerMode(join(local, "app-latest.db")), [1, 1]);
  assertEquals(await sqlite3(join(local, "app-latest.db"), "SELECT count(*) FROM items;"), "500");
  assertEquals(await sqliteLeftovers(local), []);
});

Deno.test("a gzip of a 0-byte file fails verify, restore and pull with exit 3, and nothing is written", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const store = dir.join("store");
  await Deno.mkdir(store);
  const empty = dir.join("empty.db");
  await Deno.writeFile(empty, new Uint8Array());
  for (const target of [store, s.remoteDir]) {
    const gz = await run("sh", ["-c", `gzip -c '${empty}' > '${join(target, EMPTY_NAME)}'`]);
    assertEquals(gz.code, 0, gz.stderr);
  }
  // A plain 0-byte .db "snapshot" too.
  const plain = join(store, "app-20250601T000000Z.db");
  await Deno.writeFile(plain, new Uint8Array());

  for (const file of [join(store, EMPTY_NAME), plain]) {
    const out = await sqlbk(["verify", file]);
    assertEquals(out.code, 3, out.stderr);
    assertStringIncludes(out.stderr, "not a SQLite database with at least one page");
  }
  const dest = dir.join("restored", "app.db");
  await Deno.mkdir(dir.join("restored"));
  let out = await sqlbk(["restore", join(store, EMPTY_NAME), "--to", dest]);
  assertEquals(out.code, 3, out.stderr);
  assertEquals((await listDir(dir.join("restored"))).filter((n) => n !== ".sqlbk-restore.lock"), []);

  const local = dir.join("pulled");
  out = await sqlbk(pullArgs(s, local), { env: { HOME: dir.path, SSH_AUTH_SOCK: "", DENO_DIR } });
  assertEquals(out.code, 3, out.stderr);
  assertStringIncludes(out.stderr, "not a SQLite database with at least one page");
  assertEquals((await listDir(local)).filter((n) => !n.startsWith(".")), [], "nothing published");
});
