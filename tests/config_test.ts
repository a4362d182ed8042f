import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { BACKUP_KEYS, loadConfig, normalizeBackupConfig, parseConfig } from "../src/config.ts";
import { ConfigError } from "../src/errors.ts";
import { blueprint } from "../src/blueprint.ts";
import { tempDir } from "./support/db.ts";

Deno.test("parseConfig() keeps the Go tool's flat keys and their defaults", () => {
  const cfg = parseConfig(`source_path = "/srv/app.db"\nbackup_dir = "/srv/bk"\n`);
  assertEquals(cfg.databases, [{
    name: "app",
    sourcePath: "/srv/app.db",
    backupDir: "/srv/bk",
    strategy: "online",
    pagesPerStep: 100,
    sleepIntervalMs: 10,
    maxDurationMs: 3_600_000,
    keepLast: 0,
    compression: "gzip",
    compressionLevel: 6,
    check: "quick",
  }]);
  const all = parseConfig(`source_path = "a.db"
backup_dir = "b"
strategy = "vacuum"
pages_per_step = 5
sleep_interval = "0s"
max_duration = "30m"
keep_last = 3
compression_level = 9
check = "full"
`).databases[0];
  assertEquals(
    [
      all.strategy,
      all.pagesPerStep,
      all.sleepIntervalMs,
      all.maxDurationMs,
      all.keepLast,
      all.compressionLevel,
      all.check,
    ],
    ["vacuum", 5, 0, 1_800_000, 3, 9, "full"],
  );
  assertThrows(() => parseConfig(`source_path = "a.db"\ncheck = "thorough"\n`), Error, `invalid "check" "thorough"`);
});

Deno.test("parseConfig() reads [databases.<name>] tables with top-level defaults", () => {
  const cfg = parseConfig(`backup_dir = "bk"
strategy = "vacuum"
keep_last = 2
[databases.main]
source_path = "data/app.db"
[databases.auth]
source_path = "data/auth.db"
strategy = "online"
backup_dir = "bk-auth"
`);
  assertEquals(cfg.databases.map((d) => [d.name, d.sourcePath, d.backupDir, d.strategy, d.keepLast]), [
    ["main", "data/app.db", "bk", "vacuum", 2],
    ["auth", "data/auth.db", "bk-auth", "online", 2],
  ]);
});

Deno.test("parseConfig() lets command-line overrides win over every table", () => {
  const cfg = parseConfig(`strategy = "vacuum"\n[databases.a]\nsource_path = "a.db"\nstrategy = "vacuum"\n`, {
    overrides: { strategy: "online" },
  });
  assertEquals(cfg.databases[0].strategy, "online");
});

Deno.test("parseConfig() rejects bad values, naming the key, the value and what is allowed", () => {
  const cases: [string, string][] = [
    [`source_path = "a.db"\nstrategy = "fast"`, `invalid "strategy" "fast": expected "online" or "vacuum"`],
    [`source_path = "a.db"\npages_per_step = 0`, `invalid "pages_per_step" 0: expected a whole number from 1`],
    [`source_path = "a.db"\nsleep_interval = "-1s"`, `invalid "sleep_interval" "-1s": a duration cannot be negative`],
    [`source_path = "a.db"\nsleep_interval = "fast"`, `invalid "sleep_interval" "fast"`],
    [`source_path = "a.db"\nmax_duration = "1d"`, `(no "d" unit: write "24h")`],
    [`source_path = "a.db"\nsleep_interval = 10`, `invalid "sleep_interval" 10: expected a duration string`],
    [`source_path = "a.db"\nkeep_last = -1`, `invalid "keep_last" -1`],
    [
      `source_path = "a.db"\ncompression_level = 10`,
      `invalid "compression_level" 10: expected a whole number from 1 to 9`,
    ],
    [`backup_dir = "b"`, `missing "source_path"`],
    [
      `source_path = "a.db"\nsleep_intervall = "10ms"`,
      `unknown key "sleep_intervall"; known keys: source_path, backup_dir`,
    ],
    [`[databases.a]\nsource_path = "a.db"\nstrat = "vacuum"`, `unknown key "strat" in [databases.a]`],
    [`source_path = "x.db"\n[databases.a]\nsource_path = "a.db"`, `"source_path" is set at the top level`],
    [`[databases.a]\nbackup_dir = "b"`, `missing "source_path" in [databases.a]`],
    [
      `[databases.a]\nsource_path = "x/app.db"\n[databases.b]\nsource_path = "y/app.db"`,
      `would write the same backup names ("app-*")`,
    ],
    [`source_path = "a.db`, `invalid TOML`],
  ];
  for (const [text, expected] of cases) {
    const err = assertThrows(() => parseConfig(text, { origin: "sqlbk.toml" }), ConfigError);
    assert(err.message.startsWith("sqlbk.toml: "), err.message);
    assert(err.message.includes(expected), `${JSON.stringify(text)}\n  got: ${err.message}\n  want: ${expected}`);
  }
});

Deno.test("loadConfig() reports a missing file with a hint", async () => {
  await using dir = await tempDir();
  const err = await loadConfig(dir.join("nope.toml")).then(() => null, (e) => e);
  assert(err instanceof ConfigError);
  assert(err.message.includes("no such file") && err.message.includes("sqlbk blueprint"), err.message);
});

Deno.test("blueprint() is a valid config with every key at its default", () => {
  const cfg = parseConfig(blueprint()).databases[0];
  assertEquals([
    cfg.strategy,
    cfg.pagesPerStep,
    cfg.sleepIntervalMs,
    cfg.maxDurationMs,
    cfg.keepLast,
    cfg.compressionLevel,
  ], [
    "online",
    100,
    10,
    3_600_000,
    0,
    6,
  ]);
  for (const key of BACKUP_KEYS) {
    assert(blueprint().includes(`${key} =`), key);
  }
});

Deno.test("normalizeBackupConfig() accepts durations as text or milliseconds", () => {
  const cfg = normalizeBackupConfig({ sourcePath: "app.db", sleepInterval: "0s", maxDuration: 5000 });
  assertEquals([cfg.name, cfg.backupDir, cfg.sleepIntervalMs, cfg.maxDurationMs], ["app", "./backups", 0, 5000]);
  assertThrows(() => normalizeBackupConfig({ sourcePath: "app.db", pagesPerStep: 0 }), ConfigError, "pages_per_step");
});
