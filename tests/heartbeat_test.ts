import { assert, assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { makeDatabase, sqlbk, tempDir } from "./support/db.ts";
import { heartbeatUrl, sendHeartbeat } from "../src/monitor/heartbeat.ts";

interface Ping {
  method: string;
  path: string;
  body: string;
  type: string | null;
}

/** A real HTTP server on 127.0.0.1 that records every request and answers `status`. */
function recorder(status = 200) {
  const pings: Ping[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    pings.push({
      method: req.method,
      path: url.pathname + url.search,
      body: await req.text(),
      type: req.headers.get("content-type"),
    });
    return new Response("OK", { status });
  });
  return { pings, url: `http://127.0.0.1:${server.addr.port}`, server };
}

Deno.test("sqlbk backup --heartbeat-url pings the URL on success and URL/fail on failure, with a summary", async () => {
  await using dir = await tempDir();
  const hc = recorder();
  try {
    await makeDatabase(dir.join("app.db"), { rows: 100 });
    const ok = await sqlbk([
      "backup",
      dir.join("app.db"),
      "-d",
      dir.join("b"),
      "-q",
      "--heartbeat-url",
      `${hc.url}/ping/abc`,
    ]);
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(hc.pings.length, 1);
    assertEquals([hc.pings[0].method, hc.pings[0].path], ["POST", "/ping/abc"]);
    assertMatch(hc.pings[0].type ?? "", /^text\/plain/);
    assertStringIncludes(hc.pings[0].body, "app: published app-");

    // The same failure with and without a heartbeat: the same exit code.
    const plain = await sqlbk(["backup", dir.join("gone.db"), "-d", dir.join("b"), "-q"]);
    const failed = await sqlbk([
      "backup",
      dir.join("gone.db"),
      "-d",
      dir.join("b"),
      "-q",
      "--heartbeat-url",
      `${hc.url}/ping/abc?rid=1`,
    ]);
    assertEquals(failed.code, plain.code);
    assertEquals(failed.code, 2);
    assertEquals(hc.pings.length, 2);
    assertEquals(hc.pings[1].path, "/ping/abc/fail?rid=1");
    assertStringIncludes(hc.pings[1].body, "gone: failed: ");
    assertStringIncludes(hc.pings[1].body, "no such file");
  } finally {
    await hc.server.shutdown();
  }
});

Deno.test("sqlbk status --heartbeat-url reports stale backups as a failure; a server error is only a warning", async () => {
  await using dir = await tempDir();
  const hc = recorder(500);
  try {
    await Deno.mkdir(dir.join("b"));
    const config = dir.join("sqlbk.toml");
    await Deno.writeTextFile(
      config,
      `heartbeat_url = "${hc.url}/hb"\n[databases.app]\nsource_path = "app.db"\nbackup_dir = ${
        JSON.stringify(dir.join("b"))
      }\n`,
    );
    const out = await sqlbk(["status", "-c", config]);
    assertEquals(out.code, 1);
    assertEquals(hc.pings.map((p) => p.path), ["/hb/fail"]);
    assertStringIncludes(hc.pings[0].body, "app: missing");
    assertStringIncludes(out.stderr, `warning: heartbeat to "${hc.url}/hb/fail" failed: HTTP 500`);
  } finally {
    await hc.server.shutdown();
  }
});

Deno.test("a heartbeat server that never answers does not hold the run past the timeout nor change its exit code", async () => {
  await using dir = await tempDir();
  // Accepts connections and never says a word.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch { /* closed */ }
  })();
  try {
    await makeDatabase(dir.join("app.db"), { rows: 50 });
    const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/ping`;
    const started = Date.now();
    const out = await sqlbk(["backup", dir.join("app.db"), "-d", dir.join("b"), "-q", "--heartbeat-url", url]);
    const seconds = (Date.now() - started) / 1000;
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stderr, `warning: heartbeat to "${url}" failed: no answer within 10s`);
    assert(seconds >= 10 && seconds < 45, `took ${seconds}s`);
    assert(held.length >= 1, "the heartbeat never connected");
    // The backup itself was published.
    const names = [];
    for await (const e of Deno.readDir(dir.join("b"))) names.push(e.name);
    assert(names.some((n) => n.endsWith(".bck.gz")), names.join(", "));
  } finally {
    listener.close();
    for (const c of held) c.close();
    await accepting;
  }
});

Deno.test("sendHeartbeat() never rejects, and heartbeatUrl() keeps the query string", async () => {
  assertEquals(heartbeatUrl("https://hc-ping.com/abc/", false), "https://hc-ping.com/abc/fail");
  assertEquals(
    heartbeatUrl("https://kuma.example/api/push/x?status=up", false),
    "https://kuma.example/api/push/x/fail?status=up",
  );
  assertEquals(heartbeatUrl("https://hc-ping.com/abc", true), "https://hc-ping.com/abc");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  const r = await sendHeartbeat(`http://127.0.0.1:${port}/x`, { success: true, body: "body", timeoutMs: 5000 });
  assertEquals(r.ok, false);
  assert(r.error && r.error.length > 0);
});
