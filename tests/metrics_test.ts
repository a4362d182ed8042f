import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { makeDatabase, ROOT, run, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { formatBackupName } from "../src/naming.ts";
import { mergeSamples, parseMetrics, renderMetrics } from "../src/monitor/metrics.ts";
import { join } from "node:path";

async function promtool(path: string): Promise<void> {
  const out = await run("promtool", ["check", "metrics"], { stdin: await Deno.readTextFile(path) });
  assertEquals(out.code, 0, `promtool check metrics failed:\n${out.stdout}${out.stderr}`);
  assertEquals(out.stdout + out.stderr, "", "promtool's lint found problems");
}

function value(text: string, family: string, labels: string): number | undefined {
  return parseMetrics(text).get(family as never)?.get(labels);
}

Deno.test("--metrics-file merges backup and status runs across databases and runs, and promtool accepts it", async () => {
  await using dir = await tempDir();
  const metrics = dir.join("sqlbk.prom");
  await makeDatabase(dir.join("app.db"), { rows: 200 });
  await makeDatabase(dir.join("auth.db"), { rows: 100 });
  const backups = dir.join("backups");

  // Run 1: app.
  const first = await sqlbk(["backup", dir.join("app.db"), "-d", backups, "-q", "--metrics-file", metrics, "--json"]);
  assertEquals(first.code, 0, first.stderr);
  const appBytes = JSON.parse(first.stdout).bytes;
  await promtool(metrics);
  const after1 = await Deno.readTextFile(metrics);
  const appLabels = `database="app",kind="backup"`;
  assertEquals(value(after1, "sqlbk_last_attempt_success", appLabels), 1);
  assertEquals(value(after1, "sqlbk_last_size_bytes", appLabels), appBytes);
  const appSuccess = value(after1, "sqlbk_last_success_timestamp_seconds", appLabels)!;
  assert(Math.abs(appSuccess - Date.now() / 1000) < 120, String(appSuccess));
  assert(value(after1, "sqlbk_last_duration_seconds", appLabels)! >= 0);

  // Run 2: auth, from a config that names metrics_file; app's series stay.
  const config = dir.join("sqlbk.toml");
  await Deno.writeTextFile(
    config,
    `source_path = ${JSON.stringify(dir.join("auth.db"))}\nbackup_dir = ${JSON.stringify(backups)}\n` +
      `metrics_file = ${JSON.stringify(metrics)}\n`,
  );
  assertEquals((await sqlbk(["backup", "-c", config, "-q"])).code, 0);
  await promtool(metrics);
  const after2 = await Deno.readTextFile(metrics);
  assertEquals(value(after2, "sqlbk_last_success_timestamp_seconds", appLabels), appSuccess);
  assertEquals(value(after2, "sqlbk_last_attempt_success", `database="auth",kind="backup"`), 1);

  // Run 3: app fails (its source is gone): attempt and result change, the last success stays.
  await Deno.remove(dir.join("app.db"));
  await Deno.remove(dir.join("app.db-wal")).catch(() => {});
  const failed = await sqlbk(["backup", dir.join("app.db"), "-d", backups, "-q", "--metrics-file", metrics]);
  assertEquals(failed.code, 2);
  const after3 = await Deno.readTextFile(metrics);
  assertEquals(value(after3, "sqlbk_last_attempt_success", appLabels), 0);
  assertEquals(value(after3, "sqlbk_last_success_timestamp_seconds", appLabels), appSuccess);
  assertEquals(value(after3, "sqlbk_last_size_bytes", appLabels), appBytes);
  assert(value(after3, "sqlbk_last_attempt_timestamp_seconds", appLabels)! >= appSuccess);

  // Run 4: status adds the newest backup's age, next to the backup series.
  const old = formatBackupName("legacy", new Date(Date.now() - 30 * 3_600_000), { strategy: "online" });
  await placeBackup(backups, old, { rows: 10 });
  const status = await sqlbk(["status", backups, "--metrics-file", metrics]);
  assertEquals(status.code, 1, status.stderr);
  await promtool(metrics);
  const after4 = await Deno.readTextFile(metrics);
  assertEquals(value(after4, "sqlbk_backup_stale", `database="legacy"`), 1);
  assertEquals(value(after4, "sqlbk_backup_stale", `database="app"`), 0);
  const age = value(after4, "sqlbk_newest_backup_age_seconds", `database="legacy"`)!;
  assert(age >= 30 * 3600 && age < 30 * 3600 + 300, String(age));
  assertEquals(value(after4, "sqlbk_backups", `database="auth"`), 1);
  assertEquals(value(after4, "sqlbk_last_success_timestamp_seconds", appLabels), appSuccess);
  assertStringIncludes(after4, "# TYPE sqlbk_newest_backup_age_seconds gauge\n");
});

Deno.test("renderMetrics() escapes label values and parseMetrics() reads them back", () => {
  const samples = mergeSamples(new Map(), {
    runs: [{
      database: 'we"ird\\na\nme',
      kind: "pull",
      ok: true,
      endedMs: 1_750_000_000_000,
      durationMs: 1500,
      bytes: 9,
    }],
  });
  const text = renderMetrics(samples);
  assertStringIncludes(text, `sqlbk_last_size_bytes{database="we\\"ird\\\\na\\nme",kind="pull"} 9\n`);
  assertEquals(renderMetrics(parseMetrics(text)), text);
  assertEquals(parseMetrics('garbage\nother_metric{a="b"} 1\n').size, 0);
});

Deno.test("a metrics file is never half-written: readers see whole files while a writer is killed mid-run", async () => {
  await using dir = await tempDir();
  const metrics = dir.join("sqlbk.prom");
  const script = dir.join("writer.ts");
  // Many series, so each write is big enough to be caught in the middle.
  await Deno.writeTextFile(
    script,
    `import { updateMetricsFile } from ${JSON.stringify(join(ROOT, "src/monitor/metrics.ts"))};
const runs = Array.from({ length: 3000 }, (_, i) => ({ database: "db" + i, kind: "backup" as const, ok: true, endedMs: 0, durationMs: 0, bytes: 0 }));
for (let n = 1;; n++) {
  for (const r of runs) { r.endedMs = n * 1000; r.bytes = n; }
  await updateMetricsFile(${JSON.stringify(metrics)}, { runs });
  if (n === 1) console.log("first");
}
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // the first file is complete
  const expectedLines = 5 * 2 + 5 * 3000;
  let reads = 0;
  let versions = new Set<number>();
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline || versions.size < 2) {
    const text = await Deno.readTextFile(metrics);
    const lines = text.trimEnd().split("\n");
    assertEquals(lines.length, expectedLines, `a reader saw a partial file (${lines.length} lines)`);
    const samples = parseMetrics(text).get("sqlbk_last_size_bytes")!;
    const seen = new Set(samples.values());
    assertEquals(seen.size, 1, "a reader saw two runs mixed in one file");
    versions = new Set([...versions, ...seen]);
    reads++;
    if (Date.now() > deadline + 60_000) break;
  }
  assert(versions.size >= 2, `the writer did not rewrite the file (${reads} reads)`);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  await promtool(metrics);
  assertEquals((await Deno.readTextFile(metrics)).trimEnd().split("\n").length, expectedLines);
  // A kill leaves at most the writer's temp file, which is not a .prom file.
  for await (const e of Deno.readDir(dir.path)) assert(!e.name.endsWith(".prom") || e.name === "sqlbk.prom", e.name);
});
