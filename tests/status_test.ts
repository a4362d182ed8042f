import { assert, assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { jsonLines, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { startSshd } from "./support/sshd.ts";
import { formatBackupName } from "../src/naming.ts";
import { backupStatus, formatAge } from "../src/monitor/status.ts";
import { formatVerifiedMarker } from "../src/verified_marker.ts";
import { sha256File } from "../src/hash.ts";

const HOUR = 3_600_000;

/** Copies one real archive to `<db>-<now - hoursAgo>-online.bck.gz` for each entry, with sidecars. */
async function placeAt(dir: string, backups: [string, number][], now = Date.now()): Promise<string[]> {
  const names: string[] = [];
  for (const [db, hoursAgo] of backups) {
    const name = formatBackupName(db, new Date(Math.floor((now - hoursAgo * HOUR) / 1000) * 1000), {
      strategy: "online",
    });
    await placeBackup(dir, name, { rows: 50 });
    names.push(name);
  }
  return names;
}

Deno.test("sqlbk status exits 0 when every database is fresh, 1 when one is stale or missing, from the names' times", async () => {
  await using dir = await tempDir();
  const backups = dir.join("backups");
  await Deno.mkdir(backups);
  const [appOld, appNewest, authOnly] = await placeAt(backups, [["app", 50], ["app", 1], ["auth", 30]]);
  // File times say the opposite of the names: status must not look at them.
  await Deno.utime(`${backups}/${appNewest}`, new Date("2001-01-01T00:00:00Z"), new Date("2001-01-01T00:00:00Z"));
  await Deno.utime(`${backups}/${authOnly}`, new Date(), new Date());

  const fresh = await sqlbk(["status", backups, "--json", "--max-age", "31h"]);
  assertEquals(fresh.code, 0, fresh.stderr);
  const rows = jsonLines(fresh.stdout);
  assertEquals(rows.map((r) => [r.database, r.state, r.backups]), [["app", "fresh", 2], ["auth", "fresh", 1]]);
  const app = rows[0] as { newest: Record<string, unknown>; totalBytes: number; maxAgeSeconds: number };
  assertEquals(app.newest.file, appNewest);
  // A checksum file beside it, as a server's directory holds: not a pull's verification.
  assertEquals([app.newest.strategy, app.newest.codec, app.newest.verified], ["online", "gzip", false]);
  assert((app.newest.ageSeconds as number) >= 3600 && (app.newest.ageSeconds as number) < 3700, String(app.newest));
  assertEquals(app.maxAgeSeconds, 31 * 3600);
  const sizes = await Promise.all([appOld, appNewest].map(async (n) => (await Deno.stat(`${backups}/${n}`)).size));
  assertEquals(app.newest.bytes, sizes[1]);
  assertEquals(app.totalBytes, sizes[0] + sizes[1]);

  // Default max age is 25h: auth (30h) is stale.
  const stale = await sqlbk(["status", backups]);
  assertEquals(stale.code, 1, stale.stderr);
  const lines = stale.stdout.trim().split("\n");
  assertMatch(lines[0], /^DATABASE\s+STATE\s+NEWEST\s+AGE\s+SIZE\s+BACKUPS\s+TOTAL\s+VERIFIED\s+LOCATION$/);
  assertMatch(lines[1], /^app\s+fresh\s+\S+Z\s+1h0m\s/);
  assertMatch(lines[2], /^auth\s+stale\s+\S+Z\s+30h0m\s/);
  // The columns line up.
  assertEquals(lines[1].indexOf("fresh"), lines[0].indexOf("STATE"));
});

Deno.test("sqlbk status --config checks each database's backup_dir, with per-database max_age, and reports missing ones", async () => {
  await using dir = await tempDir();
  const backups = dir.join("backups");
  await Deno.mkdir(backups);
  await placeAt(backups, [["app", 2], ["auth", 30]]);
  const config = dir.join("sqlbk.toml");
  await Deno.writeTextFile(
    config,
    `backup_dir = ${JSON.stringify(backups)}
max_age = "24h"
[databases.app]
source_path = "/srv/app.db"
[databases.auth]
source_path = "/srv/auth.db"
max_age = "36h"
[databases.logs]
source_path = "/srv/logs.db"
`,
  );
  const out = await sqlbk(["status", "--config", config, "--json"]);
  assertEquals(out.code, 1, out.stderr);
  const rows = jsonLines(out.stdout);
  assertEquals(rows.map((r) => [r.database, r.state, r.fresh, r.maxAgeSeconds]), [
    ["app", "fresh", true, 24 * 3600],
    ["auth", "fresh", true, 36 * 3600],
    ["logs", "missing", false, 24 * 3600],
  ]);
  assertEquals([rows[2].newest, rows[2].backups, rows[2].totalBytes], [null, 0, 0]);

  // --max-age wins over the config; a missing database stays missing.
  const strict = await sqlbk(["status", "--config", config, "--json", "--max-age", "1h"]);
  assertEquals(jsonLines(strict.stdout).map((r) => r.state), ["stale", "stale", "missing"]);

  // Without the missing database every one is fresh: exit 0.
  await Deno.writeTextFile(config, (await Deno.readTextFile(config)).replace(/\[databases\.logs\][^[]*$/, ""));
  const ok = await sqlbk(["status", "--config", config]);
  assertEquals(ok.code, 0, ok.stdout + ok.stderr);

  // A pull host's config: its [pull] local_dir, with the databases it must hold.
  const pulled = dir.join("pulled");
  await Deno.mkdir(pulled);
  await placeAt(pulled, [["app", 3]]);
  const pullConfig = dir.join("pull.toml");
  await Deno.writeTextFile(
    pullConfig,
    `[pull]\nhost = "db1"\nremote_dir = "/srv"\nlocal_dir = ${JSON.stringify(pulled)}\ndatabases = ["app", "auth"]\n`,
  );
  const host = await sqlbk(["status", "-c", pullConfig, "--json"]);
  assertEquals(host.code, 1);
  assertEquals(jsonLines(host.stdout).map((r) => [r.database, r.state, r.location]), [
    ["app", "fresh", pulled],
    ["auth", "missing", pulled],
  ]);
});

Deno.test("sqlbk status rejects bad usage with exit 2 and an unreadable directory with exit 1", async () => {
  await using dir = await tempDir();
  const none = await sqlbk(["status"]);
  assertEquals(none.code, 2);
  assertStringIncludes(none.stderr, "give a DIR or TARGET, or --config FILE");
  const days = await sqlbk(["status", dir.path, "--max-age", "2d"]);
  assertEquals(days.code, 2);
  assertMatch(days.stderr, /^error: Invalid --max-age "2d": .*no "d" unit/);
  const badKey = dir.join("bad.toml");
  await Deno.writeTextFile(badKey, `max_age = "soon"\n[pull]\nlocal_dir = "x"\n`);
  const bad = await sqlbk(["status", "-c", badKey]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, `invalid "max_age" "soon"`);
  const empty = await sqlbk(["status", dir.path]);
  assertEquals(empty.code, 1);
  assertStringIncludes(empty.stderr, `error: No backups in "${dir.path}"`);
  const missing = await sqlbk(["status", dir.join("nope")]);
  assertEquals(missing.code, 1);
  assertEquals(missing.stderr, `error: Cannot read backups in "${dir.join("nope")}": no such directory\n`);
  const listMissing = await sqlbk(["list", dir.join("nope")]);
  assertEquals([listMissing.code, listMissing.stderr], [1, missing.stderr]);
  // A file given as the directory is the user's mistake: exit 2 from both, one wording.
  const file = dir.join("file.txt");
  await Deno.writeTextFile(file, "x");
  for (const command of ["status", "list"]) {
    const out = await sqlbk([command, file]);
    assertEquals(out.code, 2, out.stderr);
    assertEquals(
      out.stderr,
      `error: Cannot read backups in "${file}": it is not a directory (give the directory that holds the backups)\n`,
    );
  }
});

Deno.test("sqlbk status --json prints an object for a location with no backups, or one it cannot read, exit 1", async () => {
  await using dir = await tempDir();
  const full = dir.join("full");
  await Deno.mkdir(full);
  await placeAt(full, [["app", 1]]);
  const gone = dir.join("gone");
  const out = await sqlbk(["status", dir.path, full, gone, "--json"]);
  assertEquals(out.code, 1, out.stderr);
  const rows = jsonLines(out.stdout);
  assertEquals(rows.map((r) => [r.database, r.location, r.state, r.fresh, r.backups]), [
    [null, dir.path, "empty", false, 0],
    ["app", full, "fresh", true, 1],
    [null, gone, "unreadable", false, 0],
  ]);
  assertEquals(rows[0].newest, null);
  assertStringIncludes(String(rows[0].error), `No backups in "${dir.path}"`);
  assertEquals(rows[2].error, `Cannot read backups in "${gone}": no such directory`);
  assertEquals(out.stderr.split("\n").filter((l) => l.startsWith("error: ")).length, 2, out.stderr);
});

Deno.test("sqlbk status and list of a target that refuses the connection print the same line, exit 1", async () => {
  await using dir = await tempDir();
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const target = `sftp://backup@127.0.0.1:${(closed.addr as Deno.NetAddr).port}/srv/backups`;
  closed.close();
  const env = { HOME: dir.path, SSH_AUTH_SOCK: "" };
  const list = await sqlbk(["list", target], { env });
  const status = await sqlbk(["status", target, "--json"], { env });
  assertEquals(list.code, 1, list.stderr);
  assertMatch(list.stderr, /^error: Cannot connect to "127\.0\.0\.1:\d+": connection refused .*\n$/);
  assertEquals([status.code, status.stderr], [1, list.stderr]);
  const row = jsonLines(status.stdout)[0];
  assertEquals([row.database, row.location, row.state], [null, target, "unreadable"]);
  assertEquals(`error: ${row.error}\n`, list.stderr);
});

Deno.test("sqlbk status TARGET lists a remote directory through a real sshd", async () => {
  await using server = await startSshd();
  await placeAt(server.remoteDir, [["app", 2], ["app", 26], ["auth", 40]]);
  const target = `${server.user}@127.0.0.1:${server.remoteDir}`;
  const conn = ["--port", String(server.port), "-i", server.clientKey, "--known-hosts", server.knownHosts];
  const out = await sqlbk(["status", target, ...conn, "--json"], { env: { SSH_AUTH_SOCK: "" } });
  assertEquals(out.code, 1, out.stderr);
  const rows = jsonLines(out.stdout) as {
    database: string;
    state: string;
    newest: { file: string; verified: unknown };
  }[];
  assertEquals(rows.map((r) => [r.database, r.state, r.newest.verified]), [["app", "fresh", null], [
    "auth",
    "stale",
    null,
  ]]);
  assertEquals(rows[0].database, "app");
  const lenient = await sqlbk(["status", target, ...conn, "--max-age", "48h"], { env: { SSH_AUTH_SOCK: "" } });
  assertEquals(lenient.code, 0, lenient.stderr);
  assertStringIncludes(lenient.stdout, `127.0.0.1:${server.remoteDir}`);

  // With a pull host's config: its [pull] connection settings, and whether its local_dir holds each newest copy verified.
  await using local = await tempDir();
  const appNewest = rows[0].newest.file;
  await Deno.copyFile(`${server.remoteDir}/${appNewest}`, local.join(appNewest));
  // The mark a pull writes after verifying the copy (a checksum copied from the server would not count).
  await Deno.writeTextFile(
    local.join(`${appNewest}.sha256`),
    formatVerifiedMarker(appNewest, { sha256: await sha256File(local.join(appNewest)), check: "full" }),
  );
  const config = local.join("pull.toml");
  await Deno.writeTextFile(
    config,
    `[pull]\nport = ${server.port}\nidentity_file = ${JSON.stringify(server.clientKey)}\n` +
      `known_hosts = ${JSON.stringify(server.knownHosts)}\nlocal_dir = ${JSON.stringify(local.path)}\n`,
  );
  const held = await sqlbk(["status", target, "-c", config, "--json"], { env: { SSH_AUTH_SOCK: "" } });
  assertEquals(held.code, 1, held.stderr);
  assertEquals(
    jsonLines(held.stdout).map((r) => [r.database, (r.newest as { verified: unknown }).verified]),
    [["app", true], ["auth", false]],
  );
});

Deno.test("backupStatus() and formatAge() summarize a listing", () => {
  const now = Date.parse("2025-07-02T12:00:00Z");
  const rows = backupStatus(
    [
      {
        database: "a",
        file: "a-1",
        time: "2025-07-01T12:00:00Z",
        strategy: "online",
        bytes: 5,
        verified: true,
        latest: false,
      },
      {
        database: "a",
        file: "a-2",
        time: "2025-07-02T11:00:00Z",
        strategy: null,
        bytes: 7,
        verified: false,
        latest: true,
      },
    ],
    "d",
    { now, expected: ["b"], maxAgeMs: (db) => (db === "a" ? 1800_000 : 1) },
  );
  assertEquals(rows.map((r) => [r.database, r.state, r.backups, r.totalBytes, r.newest?.ageSeconds]), [
    ["a", "stale", 2, 12, 3600],
    ["b", "missing", 0, 0, undefined],
  ]);
  assertEquals([formatAge(45), formatAge(720), formatAge(93_600), formatAge(4 * 86400 + 7200), formatAge(-180)], [
    "45s",
    "12m",
    "26h0m",
    "4d2h",
    "in 3m",
  ]);
});

Deno.test("sqlbk status shows a backup dated a little ahead of the clock (within the skew) as AGE 'in 3m', fresh", async () => {
  await using dir = await tempDir();
  const [name] = await placeAt(dir.path, [["app", -3.5 / 60]]); // 3m30s ahead
  const text = await sqlbk(["status", dir.path]);
  assertEquals(text.code, 0, text.stderr);
  const row = text.stdout.split("\n").find((l) => l.startsWith("app "));
  assertMatch(row ?? "", /^app\s+fresh\s+\S+\s+in 3m\s/);
  const json = await sqlbk(["status", dir.path, "--json"]);
  const newest = (jsonLines(json.stdout)[0] as { newest: { file: string; ageSeconds: number } }).newest;
  assertEquals(newest.file, name);
  assert(newest.ageSeconds <= -180 && newest.ageSeconds > -240, String(newest.ageSeconds)); // the number stays negative
});
