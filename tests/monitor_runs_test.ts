import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { makeDatabase, run, sqlbk, sqlite3, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { backupToml, wholeSecond } from "./support/queue.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";
import { formatBackupName } from "../src/naming.ts";
import { parseMetrics } from "../src/monitor/metrics.ts";

/** A real HTTP server on 127.0.0.1 recording the path and body of each request. */
function recorder() {
  const pings: { path: string; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    pings.push({ path: new URL(req.url).pathname, body: await req.text() });
    return new Response("OK");
  });
  return { pings, url: `http://127.0.0.1:${server.addr.port}`, server };
}

async function metricsOf(path: string) {
  const text = await Deno.readTextFile(path);
  const out = await run("promtool", ["check", "metrics"], { stdin: text });
  assertEquals(out.code, 0, out.stdout + out.stderr);
  return parseMetrics(text);
}

Deno.test("sqlbk run --once reports each job: metrics per database and a heartbeat, success then failure", async () => {
  await using dir = await tempDir();
  const hc = recorder();
  try {
    const db = dir.join("app.db");
    const config = dir.join("sqlbk.toml");
    const metrics = dir.join("sqlbk.prom");
    await makeDatabase(db, { rows: 100 });
    await Deno.writeTextFile(
      config,
      backupToml(db, dir.join("backups")) + `metrics_file = ${JSON.stringify(metrics)}\n`,
    );
    const insert = await sqlbk([
      "insert-job",
      "--dbpath",
      db,
      "--interval",
      "1h",
      "--scheduled",
      new Date(wholeSecond() - 5000).toISOString(),
      "--create-schema",
    ]);
    assertEquals(insert.code, 0, insert.stderr);
    const ok = await sqlbk([
      "run",
      "--dbpath",
      db,
      "--config",
      config,
      "--once",
      "-q",
      "--heartbeat-url",
      `${hc.url}/hb`,
    ]);
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(hc.pings.map((p) => p.path), ["/hb"]);
    assertStringIncludes(hc.pings[0].body, "app: published app-");
    const labels = `database="app",kind="backup"`;
    const first = await metricsOf(metrics);
    assertEquals(first.get("sqlbk_last_attempt_success")?.get(labels), 1);
    assert((first.get("sqlbk_last_size_bytes")?.get(labels) ?? 0) > 0);
    const success = first.get("sqlbk_last_success_timestamp_seconds")?.get(labels);

    // The next run is an hour away (so "--once, until nothing is due" ran exactly one job on
    // a machine of any speed); make it due now, and make it fail.
    await Deno.writeTextFile(
      config,
      backupToml(dir.join("gone.db"), dir.join("backups")) + `metrics_file = ${JSON.stringify(metrics)}\n`,
    );
    await sqlite3(db, "UPDATE job_queue SET scheduled_for = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-5 seconds')");
    const failed = await sqlbk([
      "run",
      "--dbpath",
      db,
      "--config",
      config,
      "--once",
      "-q",
      "--heartbeat-url",
      `${hc.url}/hb`,
    ]);
    assertEquals(failed.code, 1, failed.stderr);
    assertEquals(hc.pings.map((p) => p.path), ["/hb", "/hb/fail"]);
    assertStringIncludes(hc.pings[1].body, "gone: ");
    const second = await metricsOf(metrics);
    assertEquals(second.get("sqlbk_last_attempt_success")?.get(`database="gone",kind="backup"`), 0);
    assertEquals(second.get("sqlbk_last_success_timestamp_seconds")?.get(labels), success);
  } finally {
    await hc.server.shutdown();
  }
});

Deno.test("sqlbk pull --metrics-file and --heartbeat-url report each database, and a failed connection as a failure", async () => {
  await using server = await startSshd();
  await using dir = await tempDir();
  const hc = recorder();
  try {
    const hour = 3_600_000;
    await placeBackup(server.remoteDir, formatBackupName("app", new Date(Date.now() - hour), { strategy: "online" }), {
      rows: 30,
    });
    await placeBackup(
      server.remoteDir,
      formatBackupName("auth", new Date(Date.now() - 2 * hour), { strategy: "vacuum" }),
      {
        rows: 20,
      },
    );
    const metrics = dir.join("pull.prom");
    const to = dir.join("pulled");
    const env = { SSH_AUTH_SOCK: "" };
    const report = ["--metrics-file", metrics, "--heartbeat-url", `${hc.url}/p`];
    const ok = await sqlbk(pullArgs(server, to, "-q", ...report), { env });
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(hc.pings.map((p) => p.path), ["/p"]);
    assertStringIncludes(hc.pings[0].body, "app: app-");
    assertStringIncludes(hc.pings[0].body, "auth: auth-");
    const first = await metricsOf(metrics);
    for (const db of ["app", "auth"]) {
      assertEquals(first.get("sqlbk_last_attempt_success")?.get(`database="${db}",kind="pull"`), 1, db);
    }

    // The pull host's status over its local dir lands in the same file.
    const status = await sqlbk(["status", to, "--metrics-file", metrics, "--json"]);
    assertEquals(status.code, 0, status.stderr);
    assert(status.stdout.split("\n").filter((l) => l).every((l) => JSON.parse(l).newest.verified === true));
    const withStatus = await metricsOf(metrics);
    assertEquals(withStatus.get("sqlbk_backup_stale")?.get(`database="auth"`), 0);

    // The server is down: both databases seen before are reported failed, the exit code is the pull's own.
    await server.stop();
    const down = await sqlbk(pullArgs(server, to, "-q", "--retries", "0", ...report), { env });
    assertEquals(down.code, 1, down.stderr);
    assertEquals(hc.pings.map((p) => p.path), ["/p", "/p/fail"]);
    const after = await metricsOf(metrics);
    for (const db of ["app", "auth"]) {
      const labels = `database="${db}",kind="pull"`;
      assertEquals(after.get("sqlbk_last_attempt_success")?.get(labels), 0, db);
      assertEquals(
        after.get("sqlbk_last_success_timestamp_seconds")?.get(labels),
        first.get("sqlbk_last_success_timestamp_seconds")?.get(labels),
      );
    }
    assertEquals(after.get("sqlbk_backups")?.get(`database="app"`), 1); // status series kept
  } finally {
    await hc.server.shutdown();
  }
});
