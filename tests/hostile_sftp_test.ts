/**
 * A misbehaving SFTP server (tests/support/bad_sftpd.py as sshd's `Subsystem sftp`): no
 * request waits past --timeout, a malformed reply fails at once, a listing is bounded, and
 * the server's text never reaches the terminal raw.
 */
import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { clientEnv, listDir, ROOT, spawnSqlbk, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { pullArgs, type Sshd, sshdConnectOptions, startSshd } from "./support/sshd.ts";
import { connectSftp } from "../src/pull/transport.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
const SCRIPT = join(ROOT, "tests", "support", "bad_sftpd.py");

/** An sshd whose sftp subsystem is bad_sftpd.py serving `served` in `mode`. */
function badServer(served: string, mode: string): Promise<Sshd> {
  return startSshd({ sftpSubsystem: `/usr/bin/python3 ${SCRIPT} ${served} ${mode}` });
}

/** Runs `sqlbk args`, returning its output and how long it took in seconds. */
async function timed(args: string[], home: string) {
  const started = performance.now();
  const out = await sqlbk(args, { env: clientEnv(home) });
  return { ...out, seconds: (performance.now() - started) / 1000 };
}

/** The stderr lines that start with `error:` (a forged one would show here). */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("error:"));
}

Deno.test("pull fails within --timeout when the server never answers an SFTP request, and a later pull works", async () => {
  await using dir = await tempDir();
  const served = dir.join("served");
  await Deno.mkdir(served);
  await placeBackup(served, NAME);
  for (const op of ["opendir", "readdir", "open", "read", "close", "limits"]) {
    await using server = await badServer(served, `silent:${op}`);
    const local = dir.join(`p-${op}`);
    const out = await timed(pullArgs(server, local, "--timeout", "3s", "--retries", "0"), dir.path);
    assertEquals(out.code, 1, `${op}: ${out.stderr}`);
    const lines = errorLines(out.stderr);
    assertEquals(lines.length, 1, out.stderr);
    assertStringIncludes(lines[0], "No reply from");
    assertStringIncludes(lines[0], "no reply within 3s");
    // 3 s of silence, plus ssh's start and the CLI's own (generous: 2 shared cores).
    assert(out.seconds < 3 + 20, `${op}: took ${out.seconds}s`);
    assert(out.seconds >= 3, `${op}: failed after ${out.seconds}s, before the timeout`);
  }
  // The same directory pulls fine from a server that behaves: no lock was left behind.
  await using good = await badServer(served, "ok");
  const ok = await timed(pullArgs(good, dir.join("p-read"), "--timeout", "10s"), dir.path);
  assertEquals(ok.code, 0, ok.stderr);
  assert((await listDir(dir.join("p-read"))).includes(NAME));
});

Deno.test("a stat the server never answers fails within the timeout", async () => {
  await using dir = await tempDir();
  await placeBackup(dir.path, NAME);
  await using server = await badServer(dir.path, "silent:stat");
  await using session = await connectSftp({ ...sshdConnectOptions(server), timeoutMs: 2000 });
  const started = performance.now();
  const err = await session.stat(`/x/${NAME}`).then(() => null, (e) => e as Error);
  const seconds = (performance.now() - started) / 1000;
  assert(err !== null, "stat succeeded");
  assertStringIncludes(err.message, "No reply from");
  assertStringIncludes(err.message, `stat remote file "/x/${NAME}"`);
  assert(seconds >= 2 && seconds < 2 + 10, `took ${seconds}s`);
  assert(session.lostError !== null, "the session is still taken as usable");
});

Deno.test("a malformed SFTP reply fails the pull at once with one clear line", async () => {
  await using dir = await tempDir();
  const served = dir.join("served");
  await Deno.mkdir(served);
  await placeBackup(served, NAME);
  const cases: [string, string][] = [
    ["badlen:open", "malformed SFTP reply: packet length 2147483647"],
    ["wrongid:read", "malformed SFTP reply: DATA for request"],
    ["wrongtype:readdir", "malformed SFTP reply: readdir: a reply of type 105"],
    ["truncated:open", "malformed SFTP reply"],
    ["wrongtype:open", "malformed SFTP reply: open: a reply of type 105"],
    ["wrongtype:limits", "malformed SFTP reply: limits: a reply of type 105"],
    ["truncated:limits", "malformed SFTP reply"],
  ];
  for (const [mode, expected] of cases) {
    await using server = await badServer(served, mode);
    // A long timeout: failing "at once" means long before it.
    const out = await timed(pullArgs(server, dir.join(`p-${mode}`), "--timeout", "120s", "--retries", "0"), dir.path);
    assertEquals(out.code, 1, `${mode}: ${out.stderr}`);
    const lines = errorLines(out.stderr);
    assertEquals(lines.length, 1, out.stderr);
    assertStringIncludes(lines[0], expected);
    assert(out.seconds < 60, `${mode}: took ${out.seconds}s`);
  }
});

Deno.test("pull reads no more per request than the server's limits@openssh.com max-read-length", async () => {
  await using dir = await tempDir();
  const served = dir.join("served");
  await Deno.mkdir(served);
  // Random text compresses little: an archive of several max-length reads.
  const path = await placeBackup(served, NAME, { rows: 1000, payload: 1000 });
  assert((await Deno.stat(path)).size > 4 * 65536, "the archive takes several reads");
  // The server fails every READ over 65536 bytes: both pulls work only within its limit.
  await using server = await badServer(served, "ok");
  for (const extra of [[], ["--chunk-size", "261120"]]) {
    const local = dir.join(`p${extra.length}`);
    const out = await timed(pullArgs(server, local, "--timeout", "30s", "--retries", "0", ...extra), dir.path);
    assertEquals(out.code, 0, out.stderr);
    assertEquals(await Deno.readFile(join(local, NAME)), await Deno.readFile(path));
  }
});

/**
 * Waits until a pull runs in `dir`: it makes `.sqlbk-verify.lock` right after taking the pull
 * lock (touching the pull lock here could make the pull itself fail).
 */
async function waitForPullLock(dir: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await listDir(dir).catch((): string[] => [])).includes(".sqlbk-verify.lock")) {
    assert(Date.now() < deadline, "the pull never took its lock");
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("a pull killed while the server hangs leaves no lock that blocks the next pull", async () => {
  await using dir = await tempDir();
  const served = dir.join("served");
  await Deno.mkdir(served);
  await placeBackup(served, NAME);
  const local = dir.join("p");
  await using hung = await badServer(served, "silent:read");
  await using good = await badServer(served, "ok");
  const child = spawnSqlbk(pullArgs(hung, local, "--timeout", "600h"), { env: clientEnv(dir.path) });
  try {
    await waitForPullLock(local);
    // While it runs, a second pull is refused (the lock works)...
    const refused = await timed(pullArgs(good, local, "--timeout", "10s"), dir.path);
    assertEquals(refused.code, 1, refused.stderr);
    assertStringIncludes(refused.stderr, "Another");
  } finally {
    // ...and once it is killed, its lock is gone with it.
    child.kill("SIGKILL");
    await child.output();
  }
  const ok = await timed(pullArgs(good, local, "--timeout", "10s"), dir.path);
  assertEquals(ok.code, 0, ok.stderr);
  assert((await listDir(local)).includes(NAME));
  // A hung pull also ends at once on SIGTERM (the interrupt ends its connection), not after 600h.
  const termed = spawnSqlbk(pullArgs(hung, dir.join("q"), "--timeout", "600h"), { env: clientEnv(dir.path) });
  await waitForPullLock(dir.join("q"));
  const started = performance.now();
  termed.kill("SIGTERM");
  const out = await termed.output();
  assert((performance.now() - started) / 1000 < 20, "SIGTERM did not end the hung pull");
  assertEquals(out.code, 1, new TextDecoder().decode(out.stderr));
  assertStringIncludes(new TextDecoder().decode(out.stderr), "interrupted");
});

Deno.test("an endless listing stops at the entry limit with flat memory", async () => {
  await using dir = await tempDir();
  await using server = await badServer(dir.path, "endless");
  await using session = await connectSftp({ ...sshdConnectOptions(server), timeoutMs: 30_000 });
  const before = Deno.memoryUsage().rss;
  const err = await session.list("/anything").then(() => null, (e) => e as Error);
  const grown = Deno.memoryUsage().rss - before;
  assert(err !== null, "an endless listing ended");
  assertStringIncludes(err.message, "more than 100000 entries, the limit");
  assert(grown < 200 * 1024 * 1024, `memory grew by ${grown} bytes`);
  // The bytes limit too, and the CLI's line names it.
  await using again = await connectSftp({ ...sshdConnectOptions(server), timeoutMs: 30_000 });
  const bytes = await again.list("/anything", { maxBytes: 1024 * 1024 }).then(() => null, (e) => e as Error);
  assertStringIncludes(bytes?.message ?? "", "more than 1 MiB of names, the limit");
  const out = await timed(
    [
      "list",
      `${server.user}@127.0.0.1:/anything`,
      "--port",
      String(server.port),
      "-i",
      server.clientKey,
      "--known-hosts",
      server.knownHosts,
      "--ssh-config",
      server.sshConfig,
    ],
    dir.path,
  );
  assertEquals(out.code, 1, out.stderr);
  assertEquals(errorLines(out.stderr).length, 1, out.stderr);
  assertStringIncludes(out.stderr, "more than 100000 entries, the limit");
});
