import { Decrypter, Encrypter, generateHybridIdentity, generateIdentity, identityToRecipient } from "age-encryption";
import { assertEquals, assertMatch, assertRejects } from "./support/assert.ts";
import { listDir, makeDatabase, sqlbk, sqlite3, type TempDir, tempDir } from "./support/db.ts";
import { backupToml, jobRows, wholeSecond } from "./support/queue.ts";
import { APP_CONFIG_SCHEMA, loadConfigFromDb, readAgeIdentities } from "../src/app_config.ts";
import { ConfigError } from "../src/errors.ts";

/** Writes an age key file as age-keygen does: comments, the identity, a blank line. */
async function keyFile(dir: TempDir, name: string): Promise<{ path: string; identity: string }> {
  const identity = await generateIdentity();
  const path = dir.join(name);
  await Deno.writeTextFile(
    path,
    `# created: 2025-07-01T10:00:00Z\n# public key: ${await identityToRecipient(identity)}\n\n${identity}\n\n`,
  );
  return { path, identity };
}

async function appWithJob(dir: TempDir): Promise<string> {
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 100 });
  const out = await sqlbk([
    "insert-job",
    "--dbpath",
    db,
    "--scheduled",
    new Date(wholeSecond() - 2000).toISOString(),
    "--create-schema",
  ]);
  assertEquals(out.code, 0, out.stderr);
  return db;
}

Deno.test("config-put stores an age-encrypted config that sqlbk run --config-from-db uses", async () => {
  await using dir = await tempDir();
  const db = await appWithJob(dir);
  const key = await keyFile(dir, "age.key");
  const toml = dir.join("sqlbk.toml");
  const text = backupToml(db, dir.join("backups"));
  await Deno.writeTextFile(toml, text);

  const put = await sqlbk([
    "config-put",
    "--dbpath",
    db,
    "--age-key",
    key.path,
    "--description",
    "first",
    "--create-schema",
    toml,
  ]);
  assertEquals(put.code, 0, put.stderr);
  assertMatch(put.stdout, /^stored app_config row 1 \(scope sqlite_backup, created_at \S+\)\n$/);
  const row = (await sqlite3(db, "SELECT scope, format, description, typeof(content), created_at FROM app_config;"))
    .split("|");
  assertEquals(row.slice(0, 4), ["sqlite_backup", "toml", "first", "blob"]);
  // Whole seconds, as restinpieces writes them (text comparison orders rows).
  assertMatch(row[4], /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  // So does the schema's default, for rows written without created_at.
  await sqlite3(db, "INSERT INTO app_config (scope, content) VALUES ('other', x'00');");
  assertMatch(
    await sqlite3(db, "SELECT created_at FROM app_config WHERE scope = 'other';"),
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/,
  );
  await sqlite3(db, "DELETE FROM app_config WHERE scope = 'other';");
  // Binary age v1, decryptable with the identity by the age library directly.
  const hex = await sqlite3(db, "SELECT hex(content) FROM app_config;");
  const bytes = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  assertEquals(new TextDecoder().decode(bytes.subarray(0, 22)), "age-encryption.org/v1\n");
  const d = new Decrypter();
  d.addIdentity(key.identity);
  assertEquals(await d.decrypt(bytes, "text"), text);

  // A newer row wins (created_at DESC, id DESC).
  await Deno.writeTextFile(toml, backupToml(db, dir.join("newer")));
  const put2 = await sqlbk(["config-put", "--dbpath", db, "--age-key", key.path, toml]);
  assertEquals(put2.code, 0, put2.stderr);

  const ran = await sqlbk(["run", "--dbpath", db, "--config-from-db", "--age-key", key.path, "--once"]);
  assertEquals(ran.code, 0, ran.stderr);
  assertEquals((await listDir(dir.join("newer"))).filter((n) => n.endsWith(".bck.gz")).length, 1);
  assertEquals((await jobRows(db)).map((r) => r.status), ["completed", "pending"]);
});

Deno.test("run --config-from-db fails clearly for a wrong key, a missing row, a non-TOML format or no table", async () => {
  await using dir = await tempDir();
  const db = await appWithJob(dir);
  const key = await keyFile(dir, "age.key");
  const other = await keyFile(dir, "other.key");
  const run = (keyPath: string, ...extra: string[]) =>
    sqlbk(["run", "--dbpath", db, "--config-from-db", "--age-key", keyPath, "--once", ...extra]);

  let out = await run(key.path);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /^error: Table "app_config" not found in ".*app\.db": store a config with "sqlbk config-put/);

  const toml = dir.join("sqlbk.toml");
  await Deno.writeTextFile(toml, backupToml(db, dir.join("backups")));
  const put = await sqlbk(["config-put", "--dbpath", db, "--age-key", key.path, "--create-schema", toml]);
  assertEquals(put.code, 0, put.stderr);

  out = await run(other.path);
  assertEquals(out.code, 2);
  assertMatch(
    out.stderr,
    /^error: Cannot decrypt app_config row 1 \(scope "sqlite_backup"\) in ".*app\.db" with the age key ".*other\.key": it was encrypted to another key/,
  );

  out = await run(key.path, "--scope", "nothing_here");
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /^error: No app_config row with scope "nothing_here" in ".*app\.db": store one with/);

  await sqlite3(db, "UPDATE app_config SET format = 'json';");
  out = await run(key.path);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /^error: Cannot use app_config row 1 .*: its format is "json", expected "toml"\n$/);

  await sqlite3(db, "UPDATE app_config SET format = 'toml', content = CAST('plain text' AS BLOB);");
  out = await run(key.path);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /its content is not an age-encrypted file/);

  out = await run(dir.join("missing.key"));
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /^error: Cannot read age key ".*missing\.key": no such file/);
  // Nothing ran: the job is still pending.
  assertEquals((await jobRows(db)).map((r) => r.status), ["pending"]);
});

Deno.test("config-put refuses an invalid config, a bad key file and a missing table without storing anything", async () => {
  await using dir = await tempDir();
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 1 });
  const key = await keyFile(dir, "age.key");
  const toml = dir.join("bad.toml");
  await Deno.writeTextFile(toml, `source_path = "app.db"\npages_per_step = 0\n`);
  let out = await sqlbk(["config-put", "--dbpath", db, "--age-key", key.path, "--create-schema", toml]);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /bad\.toml: invalid "pages_per_step" 0/);

  await Deno.writeTextFile(toml, backupToml(db, dir.join("backups")));
  out = await sqlbk(["config-put", "--dbpath", db, "--age-key", key.path, toml]);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /Table "app_config" not found .*--create-schema/);

  const badKey = dir.join("bad.key");
  await Deno.writeTextFile(badKey, "# just a comment\nage1notasecret\n");
  out = await sqlbk(["config-put", "--dbpath", db, "--age-key", badKey, "--create-schema", toml]);
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /Invalid age key ".*bad\.key": line 2 is not an age identity/);
  assertEquals(await sqlite3(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'app_config';"), "0");
});

Deno.test("readAgeIdentities() skips blank and # lines; loadConfigFromDb() names the row", async () => {
  await using dir = await tempDir();
  const key = await keyFile(dir, "age.key");
  assertEquals(await readAgeIdentities(key.path), [key.identity]);
  const empty = dir.join("empty.key");
  await Deno.writeTextFile(empty, "# nothing\n\n");
  await assertRejects(() => readAgeIdentities(empty), ConfigError, "no identity found");
  const db = dir.join("app.db");
  await makeDatabase(db, { rows: 1 });
  await assertRejects(() => loadConfigFromDb(db, { identities: [key.identity] }), ConfigError, "app_config");
});

Deno.test("config-put refuses a post-quantum age identity with one line; a row encrypted to one is still read", async () => {
  await using dir = await tempDir();
  const db = await appWithJob(dir);
  const identity = await generateHybridIdentity();
  assertMatch(identity, /^AGE-SECRET-KEY-PQ-1/);
  const keyPath = dir.join("pq.key");
  await Deno.writeTextFile(keyPath, `# post-quantum\n${identity}\n`);
  const toml = dir.join("sqlbk.toml");
  await Deno.writeTextFile(toml, backupToml(db, dir.join("backups")));
  const put = await sqlbk(["config-put", "--dbpath", db, "--age-key", keyPath, "--create-schema", toml]);
  assertEquals(put.code, 2, put.stderr);
  assertMatch(
    put.stderr,
    /^error: Invalid age key ".*pq\.key": a post-quantum identity \("AGE-SECRET-KEY-PQ-1\.\.\."\)/,
  );
  assertEquals(put.stderr.trim().split("\n").length, 1, put.stderr);
  assertEquals(await sqlite3(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'app_config';"), "0");

  await sqlite3(db, APP_CONFIG_SCHEMA);
  // A row another tool encrypted to the post-quantum recipient is read with that identity.
  const encrypter = new Encrypter();
  encrypter.addRecipient(await identityToRecipient(identity));
  const content = await encrypter.encrypt(await Deno.readTextFile(toml));
  const hex = Array.from(content, (b) => b.toString(16).padStart(2, "0")).join("");
  await sqlite3(db, `INSERT INTO app_config (scope, content, format) VALUES ('sqlite_backup', x'${hex}', 'toml');`);
  const loaded = await loadConfigFromDb(db, { ageKeyFile: keyPath });
  assertEquals(loaded.config.databases[0].sourcePath, db);
});
