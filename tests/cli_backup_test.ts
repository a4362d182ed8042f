import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { join } from "node:path";
import {
  CLI_PERMISSIONS,
  listDir,
  makeDatabase,
  ROOT,
  run,
  spawnSqlbk,
  sqlbk,
  sqlite3,
  tempDir,
} from "./support/db.ts";
import { VERSION } from "../src/version.ts";

/** Asserts the run failed with `code` and exactly one `error: ...` line on stderr, no stack trace. */
function assertOneError(out: { code: number; stdout: string; stderr: string }, code: number, includes: string) {
  const lines = out.stderr.trim().split("\n");
  assertEquals(out.code, code, `exit code; stderr: ${out.stderr}`);
  assertEquals(lines.length, 1, `one line on stderr, got:\n${out.stderr}`);
  assert(lines[0].startsWith("error: "), lines[0]);
  assert(lines[0].includes(includes), `${lines[0]}\n  should include: ${includes}`);
  assertEquals(out.stdout, "");
}

Deno.test("sqlbk --help, help CMD, CMD --help and --version", async () => {
  const help = await sqlbk(["--help"]);
  assertEquals(help.code, 0);
  for (const cmd of ["backup", "blueprint"]) assert(help.stdout.includes(`  ${cmd} `), cmd);
  const backupHelp = await sqlbk(["help", "backup"]);
  assertEquals(backupHelp.code, 0);
  assert(backupHelp.stdout.startsWith("sqlbk backup: "), backupHelp.stdout);
  for (
    const flag of [
      "--config",
      "--strategy",
      "--backup-dir",
      "--pages-per-step",
      "--sleep-interval",
      "--max-duration",
      "--keep-last",
      "--json",
    ]
  ) {
    assert(backupHelp.stdout.includes(flag), flag);
  }
  assertEquals((await sqlbk(["backup", "--help"])).stdout, backupHelp.stdout);
  const version = await sqlbk(["--version"]);
  assertEquals([version.code, version.stdout.trim()], [0, `sqlbk ${VERSION}`]);
  const bare = await sqlbk([]);
  assertEquals(bare.code, 2);
  assert(bare.stderr.includes("Usage:"));
});

Deno.test("sqlbk rejects an unknown command and an unknown flag with exit code 2", async () => {
  assertOneError(await sqlbk(["bakup"]), 2, `unknown command "bakup"; did you mean "backup"?`);
  assertOneError(await sqlbk(["backup", "x.db", "--stratgy", "vacuum"]), 2, `Unknown option '--stratgy'`);
  assertOneError(await sqlbk(["backup", "x.db", "--pages-per-step"]), 2, "--pages-per-step");
  assertOneError(await sqlbk(["backup"]), 2, "Nothing to back up");
  assertOneError(await sqlbk(["backup", "a.db", "b.db"]), 2, "Too many arguments");
});

Deno.test("sqlbk backup DB publishes to ./backups with the online strategy and prints the path", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 500 });
  const out = await sqlbk(["backup", "app.db"], { cwd: dir.path });
  assertEquals(out.code, 0, out.stderr);
  assertMatch(out.stdout, /^backups\/app-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-online\.bck\.gz\n$/);
  const file = out.stdout.trim().split("/")[1];
  assertEquals(await listDir(dir.join("backups")), [`.${file}.sha256`, ".sqlbk.lock", file]);
  assert(out.stderr.includes("backup of app published"), out.stderr);
});

Deno.test("sqlbk backup --json prints one object with the result fields", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 500 });
  const out = await sqlbk(["backup", "app.db", "--json", "--strategy", "vacuum", "-d", "out", "-q"], { cwd: dir.path });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stderr, "");
  const lines = out.stdout.trim().split("\n");
  assertEquals(lines.length, 1);
  const result = JSON.parse(lines[0]);
  assertEquals(Object.keys(result), [
    "database",
    "file",
    "path",
    "bytes",
    "sha256",
    "strategy",
    "pages",
    "restarts",
    "check",
    "checkMs",
    "durationMs",
    "deleted",
  ]);
  assertEquals([result.database, result.strategy, result.restarts, result.deleted], ["app", "vacuum", 0, []]);
  assertEquals(result.path, join("out", result.file));
  assertEquals(result.bytes, (await Deno.stat(dir.join(result.path))).size);
  assertMatch(result.sha256, /^[0-9a-f]{64}$/);
  assert(Number.isInteger(result.pages) && Number.isInteger(result.durationMs));
});

Deno.test("bad input gives one clear line, exit code 2, and leaves earlier backups untouched", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 200 });
  const first = await sqlbk(["backup", "app.db", "-q"], { cwd: dir.path });
  assertEquals(first.code, 0, first.stderr);
  const before = await listDir(dir.join("backups"));
  const archive = await Deno.readFile(dir.join(first.stdout.trim()));
  await Deno.writeTextFile(dir.join("notadb.db"), "hello, this is a text file and not a database at all");
  await Deno.writeTextFile(dir.join("afile"), "x");
  let configs = 0;
  const config = async (text: string) => {
    const name = `c${++configs}.toml`;
    await Deno.writeTextFile(dir.join(name), text);
    return ["backup", "--config", name];
  };
  const cases: [string[], string][] = [
    [
      await config(`source_path = "app.db"\nstrategy = "fast"`),
      `invalid "strategy" "fast": expected "online" or "vacuum"`,
    ],
    [await config(`source_path = "app.db"\npages_per_step = 0`), `invalid "pages_per_step" 0`],
    [await config(`source_path = "app.db"\nsleep_interval = "-5ms"`), `a duration cannot be negative`],
    [await config(`source_path = "app.db"\nmax_duration = "soon"`), `invalid "max_duration" "soon"`],
    [await config(`backup_dir = "backups"`), `missing "source_path"`],
    [await config(`source_path = "app.db"\nbackupdir = "x"`), `unknown key "backupdir"; known keys: source_path`],
    [["backup", "missing.db"], `Invalid "source_path" "missing.db": no such file`],
    [["backup", "app.db", "-d", "afile"], `Invalid "backup_dir" "afile": it is a file`],
    [["backup", "app.db", "-d", "no/such/parent"], `its parent`],
    [["backup", "app.db", "--pages-per-step", "0"], `Invalid --pages-per-step "0"`],
    [["backup", "app.db", "--sleep-interval", "1d"], `(no "d" unit: write "24h")`],
    // "command line" once, not twice.
    [["backup", "app.db", "--strategy", "copy"], `error: command line: invalid "strategy" "copy": expected`],
    [["backup", "--config", "c1.toml", "--strategy", "copy"], `c1.toml: invalid "strategy" (command line) "copy"`],
    // A flag's level against the file's codec names the command line.
    [
      [...await config(`source_path = "app.db"\ncompression = "gzip"`), "--compression-level", "15"],
      `invalid "compression_level" (command line) 15: expected a whole number from 1 to 9 for gzip`,
    ],
    [
      [...await config(`[databases.a]\nsource_path = "app.db"`), "--compression-level", "15"],
      `invalid "compression_level" (command line) 15: expected a whole number from 1 to 9 for gzip`,
    ],
    [
      ["backup", "app.db", "--keep-last", "-1"],
      `Invalid --keep-last "-1": a value starting with "-" reads as a flag; write --keep-last=-1 to pass it`,
    ],
    [["backup", "app.db", "--keep-last=-1"], `Invalid --keep-last "-1": expected a whole number of at least 0`],
    [["backup", "--config", "nope.toml"], `Cannot read config "nope.toml": no such file`],
    // The [pull] table is checked by every command that loads the file, not only pull and status.
    [
      await config(`source_path = "app.db"\n[pull]\nhst = "x"`),
      `c9.toml: unknown key "hst" in [pull]; known keys: host, port`,
    ],
    [await config(`source_path = "app.db"\n[pull]\nport = "22"`), `c10.toml: invalid "port" in [pull] "22"`],
  ];
  for (const [args, expected] of cases) {
    assertOneError(await sqlbk(args, { cwd: dir.path }), 2, expected);
  }
  // Not a database is a failed backup (exit 1), found through SQLite, not a header read.
  assertOneError(
    await sqlbk(["backup", "notadb.db"], { cwd: dir.path }),
    1,
    `Source "notadb.db" is not a readable SQLite database: file is not a database (SQLITE_NOTADB)`,
  );
  // run --config too, before it touches the app's database.
  assertOneError(
    await sqlbk(["run", "--dbpath", "app.db", "--config", "c9.toml", "--once"], { cwd: dir.path }),
    2,
    `c9.toml: unknown key "hst" in [pull]`,
  );
  assertEquals(await listDir(dir.join("backups")), before);
  assertEquals(await Deno.readFile(dir.join(first.stdout.trim())), archive);
});

Deno.test("a config with several databases backs up each; one failure makes the exit code 1", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 200 });
  await makeDatabase(dir.join("auth.db"), { rows: 50, journal: "delete" });
  await Deno.writeTextFile(
    dir.join("sqlbk.toml"),
    `backup_dir = "bk"
strategy = "vacuum"
[databases.app]
source_path = "app.db"
[databases.gone]
source_path = "gone.db"
[databases.auth]
source_path = "auth.db"
strategy = "online"
`,
  );
  const out = await sqlbk(["backup", "--config", "sqlbk.toml", "--json"], { cwd: dir.path });
  assertEquals(out.code, 1, out.stderr);
  const results = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(results.map((r) => [r.database, r.strategy]), [["app", "vacuum"], ["auth", "online"]]);
  assert(out.stderr.includes(`error: gone: Invalid "source_path" "gone.db": no such file`), out.stderr);
  const files = (await listDir(dir.join("bk"))).filter((n) => n.endsWith(".bck.gz"));
  assertEquals(files.length, 2);
});

Deno.test("SIGKILL halfway leaves nothing under a final name; the next run succeeds and sweeps the leftovers", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("big.db"), { rows: 30000, payload: 200 });
  const backupDir = dir.join("backups");
  await Deno.mkdir(backupDir);
  const foreign = ["notes.tmp", ".other-hidden", "big-2020-01-01T00-00-00Z-online.bck.gz.sha256"];
  for (const name of foreign) await Deno.writeTextFile(join(backupDir, name), "keep me");
  // A leftover archive temp of an earlier crash in the compress phase.
  await Deno.writeTextFile(join(backupDir, "big-2020-01-02T00-00-00Z-online.bck.gz.tmp"), "partial");
  const child = spawnSqlbk(["backup", "big.db", "--pages-per-step", "5", "--sleep-interval", "2ms", "-q"], {
    cwd: dir.path,
  });
  // Wait until the snapshot is well under way, then kill without warning.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const names = await listDir(backupDir);
    const snap = names.find((n) => n.endsWith(".snapshot"));
    if (snap && (await Deno.stat(join(backupDir, snap))).size > 512 * 1024) break;
    if (Date.now() > deadline) throw new Error(`no snapshot appeared: ${names}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await child.output();
  const after = await listDir(backupDir);
  assertEquals(after.filter((n) => n.endsWith(".bck.gz")), [], "nothing under a final name");
  assert(after.some((n) => n.endsWith(".snapshot")), `the killed run left its snapshot: ${after}`);

  const next = await sqlbk(["backup", "big.db"], { cwd: dir.path });
  assertEquals(next.code, 0, next.stderr);
  assert(next.stderr.includes("removed 2 leftover temp files"), next.stderr);
  const file = next.stdout.trim().split("/").pop()!;
  assertEquals(await listDir(backupDir), [".sqlbk.lock", ...foreign, file, `.${file}.sha256`].sort());
  for (const name of foreign) assertEquals(await Deno.readTextFile(join(backupDir, name)), "keep me");
});

Deno.test("a full disk fails the backup with the reason and leaves earlier backups and no temp files", async () => {
  await using dir = await tempDir();
  const mnt = dir.join("small");
  await Deno.mkdir(mnt);
  // A 3 MiB tmpfs: room for the snapshot of a 1.6 MiB database, not for it and its archive.
  const mount = await run("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt]);
  assertEquals(mount.code, 0, `this test mounts a small tmpfs (needs root): ${mount.stderr}`);
  try {
    await makeDatabase(dir.join("tiny.db"), { rows: 10 });
    const ok = await sqlbk(["backup", "tiny.db", "-d", mnt, "-q"], { cwd: dir.path });
    assertEquals(ok.code, 0, ok.stderr);
    const before = await listDir(mnt);
    // Random data does not compress: snapshot (~1.6 MiB) + archive (~1.6 MiB) > 3 MiB.
    await sqlite3(
      dir.join("big.db"),
      "CREATE TABLE r (b BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400) INSERT INTO r SELECT randomblob(4000) FROM c;",
    );
    const full = await sqlbk(["backup", "big.db", "-d", mnt, "-q"], { cwd: dir.path });
    assertEquals(full.code, 1, full.stderr);
    assertEquals(full.stderr.trim().split("\n").length, 1, full.stderr);
    assertMatch(full.stderr, /^error: .*(No space left on device|SQLITE_FULL|os error 28)/);
    assertEquals(await listDir(mnt), before);
    // A snapshot that does not fit at all.
    await sqlite3(
      dir.join("big.db"),
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500) INSERT INTO r SELECT randomblob(4000) FROM c;",
    );
    for (const strategy of ["online", "vacuum"]) {
      const fuller = await sqlbk(["backup", "big.db", "-d", mnt, "-q", "-s", strategy], { cwd: dir.path });
      assertEquals(fuller.code, 1, fuller.stderr);
      assertMatch(fuller.stderr, /^error: .*(full|No space left on device|os error 28)/i);
      // The message is the failing connection's, never another's "not an error".
      assert(!/not an error/.test(fuller.stderr), fuller.stderr);
      assertEquals(await listDir(mnt), before, strategy);
    }
  } finally {
    await run("umount", [mnt]);
  }
});

Deno.test("a backup_dir on a read-only file system is a configuration error", async () => {
  await using dir = await tempDir();
  const mnt = dir.join("ro");
  await Deno.mkdir(mnt);
  const mount = await run("mount", ["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", mnt]);
  assertEquals(mount.code, 0, `this test mounts a read-only tmpfs (needs root): ${mount.stderr}`);
  try {
    await makeDatabase(dir.join("app.db"), { rows: 10 });
    assertOneError(await sqlbk(["backup", "app.db", "-d", mnt], { cwd: dir.path }), 2, `cannot write there`);
  } finally {
    await run("umount", [mnt]);
  }
});

Deno.test("a second backup into the same directory never sweeps the files of one still running", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("slow.db"), { rows: 20000, payload: 200 });
  await makeDatabase(dir.join("quick.db"), { rows: 10 });
  const slow = spawnSqlbk(["backup", "slow.db", "-d", "bk", "--pages-per-step", "5", "--sleep-interval", "1ms", "-q"], {
    cwd: dir.path,
  });
  const deadline = Date.now() + 20_000;
  while (!(await listDir(dir.join("bk")).catch(() => [])).some((n) => n.endsWith(".snapshot"))) {
    if (Date.now() > deadline) throw new Error("the slow backup never started its snapshot");
    await new Promise((r) => setTimeout(r, 20));
  }
  const quick = await sqlbk(["backup", "quick.db", "-d", "bk"], { cwd: dir.path });
  assertEquals(quick.code, 0, quick.stderr);
  assert(!quick.stderr.includes("leftover"), quick.stderr);
  const out = await slow.output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const names = (await listDir(dir.join("bk"))).filter((n) => n.endsWith(".bck.gz"));
  assertEquals(names.map((n) => n.split("-")[0]).sort(), ["quick", "slow"]);
});

Deno.test("sqlbk blueprint prints a valid template and refuses to overwrite without --force", async () => {
  await using dir = await tempDir();
  const printed = await sqlbk(["blueprint"]);
  assertEquals(printed.code, 0);
  assert(printed.stdout.includes(`strategy = "online"`));
  const written = await sqlbk(["blueprint", "-o", "sqlbk.toml"], { cwd: dir.path });
  assertEquals(written.code, 0, written.stderr);
  assertEquals(await Deno.readTextFile(dir.join("sqlbk.toml")), printed.stdout);
  await Deno.writeTextFile(dir.join("sqlbk.toml"), "# mine\n");
  assertOneError(await sqlbk(["blueprint", "-o", "sqlbk.toml"], { cwd: dir.path }), 2, "use --force");
  assertEquals(await Deno.readTextFile(dir.join("sqlbk.toml")), "# mine\n");
  assertEquals((await sqlbk(["blueprint", "-o", "sqlbk.toml", "--force"], { cwd: dir.path })).code, 0);
  assertEquals(await Deno.readTextFile(dir.join("sqlbk.toml")), printed.stdout);
  // The template, with its source pointed at a real database, backs it up.
  await makeDatabase(dir.join("app.db"), { rows: 10 });
  const text = printed.stdout.replace(`source_path = "/srv/app/data/app.db"`, `source_path = "app.db"`)
    .replace(`backup_dir = "/srv/app/backups"`, `backup_dir = "bk"`);
  await Deno.writeTextFile(dir.join("real.toml"), text);
  const backup = await sqlbk(["backup", "--config", "real.toml", "-q"], { cwd: dir.path });
  assertEquals(backup.code, 0, backup.stderr);
});

Deno.test("SIGTERM or SIGINT stops sqlbk backup between steps: exit 1, no temp files, nothing published", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("big.db"), { rows: 30000, payload: 200 });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const backupDir = dir.join(`bk-${signal}`);
    const child = spawnSqlbk(
      ["backup", "big.db", "-d", backupDir, "--pages-per-step", "5", "--sleep-interval", "2ms"],
      {
        cwd: dir.path,
      },
    );
    const deadline = Date.now() + 20_000;
    while (!(await listDir(backupDir).catch(() => [])).some((n) => n.endsWith(".snapshot"))) {
      if (Date.now() > deadline) throw new Error("the backup never started its snapshot");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill(signal);
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 1, stderr);
    assert(stderr.includes("error: Interrupted by a signal; nothing was published"), stderr);
    assertEquals(await listDir(backupDir), [".sqlbk.lock"], signal);
  }
});

Deno.test("on a terminal the backup progress bar's label, percentage and counts describe the same step", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 20_000, payload: 200 });
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = [Deno.execPath(), "run", "--quiet", ...CLI_PERMISSIONS, join(ROOT, "cli/main.ts"), "backup"]
    .concat(["app.db", "-d", "b"]).map(quote).join(" ");
  // util-linux's script gives the run a pseudo-terminal, so stderr is a terminal and the bar is drawn.
  const out = await run("script", ["-qec", command, "/dev/null"], { cwd: dir.path });
  assertEquals(out.code, 0, out.stdout);
  const bars = out.stdout.split(/[\r\n]/).map((l) => l.replaceAll("\x1b[2K", "").trim())
    .map((l) => l.match(/^app (snapshot 1\/2|compress 2\/2) \[[# ]{30}\]\s+(\d+)% (.+)$/)).filter((m) => m !== null);
  const units: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
  const amount = (text: string) => {
    const [n, unit] = text.trim().split(" ");
    return Number(n) * units[unit];
  };
  const seen = new Set<string>();
  for (const [line, step, percent, detail] of bars) {
    seen.add(step);
    const pages = detail.match(/^(\d+)\/(\d+) pages$/);
    const [done, total] = pages ? [Number(pages[1]), Number(pages[2])] : detail.split(" / ").map(amount);
    assert(step.startsWith("snapshot") === (pages !== null), line);
    assert(Math.abs(Number(percent) - (100 * done) / total) <= 3, `percent and counts disagree: ${line}`);
  }
  assertEquals([...seen].sort(), ["compress 2/2", "snapshot 1/2"], out.stdout); // each step's 100% line at least
});
