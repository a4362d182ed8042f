import { assert, assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { clientEnv, describe, jsonLines, listDir, ROOT, run, sqlbk, type TempDir, tempDir } from "./support/db.ts";
import { exists } from "../src/fs.ts";
import { flipBytes, placeBackup } from "./support/backups.ts";
import { keygen, pullArgs, type Sshd, startSshd } from "./support/sshd.ts";

const OLD_A = "app-2025-01-01T00-00-00Z-online.bck.gz";
const NEW_A = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
const OLD_B = "auth-20250101T000000Z-online.bck.gz";
const NEW_B = "auth-20250201T000000Z.db";

async function plainDatabase(dir: string, name: string): Promise<string> {
  // A plain .db snapshot (the id grammar): the database file itself.
  const { makeDatabase } = await import("./support/db.ts");
  const path = join(dir, name);
  await makeDatabase(path, { journal: "delete", rows: 50 });
  return path;
}

Deno.test("sqlbk pull fetches the newest backup of each database and ignores temp, sidecar and foreign files", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const r = s.remoteDir;
  await placeBackup(r, OLD_A, { rows: 10 });
  await placeBackup(r, NEW_A, { rows: 20 });
  await placeBackup(r, OLD_B, { rows: 5 });
  await plainDatabase(r, NEW_B);
  // Newer-looking names that are not candidates.
  await Deno.writeTextFile(join(r, "app-2025-09-01T00-00-00Z-online.bck.gz.tmp"), "partial");
  await Deno.writeTextFile(join(r, "app-2025-09-01T00-00-00Z-online.bck.gz.partial"), "partial");
  await Deno.writeTextFile(join(r, "README.txt"), "not a backup");
  await Deno.symlink(join(r, OLD_A), join(r, "app-2025-12-01T00-00-00Z-online.bck.gz"));
  const local = dir.join("pulled");

  const out = await sqlbk(pullArgs(s, local, "--json"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  const rows = jsonLines(out.stdout);
  assertEquals(rows.map((x) => x.file).sort(), [NEW_A, NEW_B]);
  for (const row of rows) {
    assertEquals(row.verified, true);
    assertEquals(row.skipped, false);
    assertMatch(String(row.sha256), /^[0-9a-f]{64}$/);
    assertEquals(row.path, join(local, String(row.file)));
  }
  const files = (await listDir(local)).filter((n) => !n.startsWith("."));
  assertEquals(files, [NEW_A, `${NEW_A}.sha256`, NEW_B, `${NEW_B}.sha256`]);
  // The pulled archive is byte-identical and gunzips to the database with 20 rows.
  assertEquals(await Deno.readFile(join(local, NEW_A)), await Deno.readFile(join(r, NEW_A)));
  const gz = await run("sh", ["-c", `gzip -dc '${join(local, NEW_A)}' > '${dir.join("a.db")}'`]);
  assertEquals(gz.code, 0);
  assertEquals((await describe(dir.join("a.db"))).counts.items, 20);

  // A second pull downloads nothing.
  const again = await sqlbk(pullArgs(s, local, "--json"), { env: clientEnv(dir.path) });
  assertEquals(again.code, 0, again.stderr);
  assert(jsonLines(again.stdout).every((x) => x.skipped === true && x.verified === true));
  assertEquals((await listDir(local)).filter((n) => !n.startsWith(".")), files);
});

Deno.test("sqlbk pull --db limits the databases, and an unknown one lists what was found", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NEW_A, { rows: 5 });
  await placeBackup(s.remoteDir, OLD_B, { rows: 5 });
  const out = await sqlbk(pullArgs(s, dir.join("p"), "--db", "auth"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), join(dir.join("p"), OLD_B));
  assertEquals((await listDir(dir.join("p"))).filter((n) => !n.startsWith(".")), [OLD_B, `${OLD_B}.sha256`]);

  const missing = await sqlbk(pullArgs(s, dir.join("p"), "--db", "nope"), { env: clientEnv(dir.path) });
  assertEquals(missing.code, 1);
  assertStringIncludes(missing.stderr, `No backups of "nope"`);
  assertStringIncludes(missing.stderr, "app, auth");
});

Deno.test("sqlbk pull with nothing to pull exits 1 and lists what it saw", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await Deno.writeTextFile(join(s.remoteDir, "notes.txt"), "x");
  await Deno.writeTextFile(join(s.remoteDir, "evil\x1b[2J\x07name"), "x");
  await Deno.writeTextFile(join(s.remoteDir, "app-2025-01-01T00-00-00Z-online.bck.gz.tmp"), "x");
  const out = await sqlbk(pullArgs(s, dir.join("p")), { env: clientEnv(dir.path) });
  assertEquals(out.code, 1);
  assertStringIncludes(out.stderr, "No backups found");
  assertStringIncludes(out.stderr, "notes.txt");
  // Server-supplied names are shown with control characters escaped.
  assertStringIncludes(out.stderr, "evil\\x1b[2J\\x07name");
  assert(!out.stderr.includes("\x1b"), "no raw escape sequence reaches the terminal");
  assertEquals(out.stderr.trim().split("\n").length, 1);
});

Deno.test("sqlbk pull refuses an unknown host key, prints its fingerprint, and --accept-new records it", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NEW_A, { rows: 5 });
  const kh = dir.join("home", ".ssh", "known_hosts"); // does not exist yet
  const args = pullArgs(s, dir.join("p")).map((a) => (a === s.knownHosts ? kh : a));
  const refused = await sqlbk(args, { env: clientEnv(dir.join("home")) });
  assertEquals(refused.code, 1);
  const fp = (await run("ssh-keygen", ["-lf", join(s.dir, "ssh_host_key.pub")])).stdout.split(" ")[1];
  assertMatch(fp, /^SHA256:/);
  assertStringIncludes(refused.stderr, `ED25519 key fingerprint ${fp}`);
  assertStringIncludes(refused.stderr, "--accept-new");
  assert(!(await listDir(dir.path)).includes("home"), "nothing written to known_hosts");

  const accepted = await sqlbk([...args, "--accept-new"], { env: clientEnv(dir.join("home")) });
  assertEquals(accepted.code, 0, accepted.stderr);
  assertStringIncludes(accepted.stderr, "Permanently added");
  const line = (await Deno.readTextFile(kh)).trim();
  assertEquals(line, `[127.0.0.1]:${s.port} ${s.hostKeyLine}`);
  // OpenSSH's own client accepts the line we wrote.
  const ssh = await run("ssh-keygen", ["-F", `[127.0.0.1]:${s.port}`, "-f", kh]);
  assertEquals(ssh.code, 0);

  const again = await sqlbk(args, { env: clientEnv(dir.join("home")) });
  assertEquals(again.code, 0, again.stderr);
});

Deno.test("sqlbk pull refuses a changed host key loudly, even with --accept-new", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NEW_A, { rows: 5 });
  const other = await keygen(dir.join("other"));
  const otherLine = (await Deno.readTextFile(`${other}.pub`)).trim().split(" ").slice(0, 2).join(" ");
  const kh = dir.join("known_hosts");
  await Deno.writeTextFile(kh, `# comment\n[127.0.0.1]:${s.port} ${otherLine}\n`);
  const args = pullArgs(s, dir.join("p"), "--accept-new").map((a) => (a === s.knownHosts ? kh : a));
  const out = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(out.code, 1);
  // One "error:" prefix, not "error: WARNING:".
  assertStringIncludes(
    out.stderr,
    `error: The host key of "[127.0.0.1]:${s.port}" has changed (ssh: REMOTE HOST IDENTIFICATION HAS CHANGED): `,
  );
  assert(!out.stderr.includes("WARNING"), out.stderr);
  assertStringIncludes(out.stderr, "line 2");
  assertStringIncludes(out.stderr, "ssh-keygen -R");
  assertEquals(await Deno.readTextFile(kh), `# comment\n[127.0.0.1]:${s.port} ${otherLine}\n`);
  assert(!(await listDir(dir.path)).includes("p") || (await listDir(dir.join("p"))).every((n) => n.startsWith(".")));
});

Deno.test("sqlbk pull accepts a hashed known_hosts entry", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NEW_A, { rows: 5 });
  const kh = dir.join("known_hosts");
  await Deno.copyFile(s.knownHosts, kh);
  const hashed = await run("ssh-keygen", ["-H", "-f", kh]);
  assertEquals(hashed.code, 0, hashed.stderr);
  assertMatch(await Deno.readTextFile(kh), /^\|1\|/);
  const args = pullArgs(s, dir.join("p")).map((a) => (a === s.knownHosts ? kh : a));
  const out = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
});

Deno.test("sqlbk pull --insecure-skip-host-key-check warns and connects", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NEW_A, { rows: 5 });
  const args = pullArgs(s, dir.join("p"), "--insecure-skip-host-key-check", "--quiet")
    .map((a) => (a === s.knownHosts ? dir.join("none") : a));
  const out = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stderr, "warning: --insecure-skip-host-key-check");
  assert(!(await listDir(dir.path)).includes("none"));
});

Deno.test("sqlbk pull with a key the server does not know fails with the authentication error", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NEW_A, { rows: 5 });
  const wrong = await keygen(dir.join("wrong_key"));
  const args = pullArgs(s, dir.join("p")).map((a) => (a === s.clientKey ? wrong : a));
  const out = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(out.code, 1);
  assertStringIncludes(out.stderr, `Authentication as ${s.user}@127.0.0.1:${s.port} was rejected; tried: ${wrong}`);
  assertEquals(out.stderr.trim().split("\n").length, 1);
});

Deno.test("sqlbk pull exits 3 on a corrupted or truncated newest backup and keeps the earlier local copy", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const local = dir.join("p");
  await placeBackup(s.remoteDir, OLD_A, { rows: 30 });
  const first = await sqlbk(pullArgs(s, local), { env: clientEnv(dir.path) });
  assertEquals(first.code, 0, first.stderr);
  const before = await Deno.readFile(join(local, OLD_A));
  const visible = async () => (await listDir(local)).filter((n) => !n.startsWith("."));
  const kept = [OLD_A, `${OLD_A}.sha256`];

  // 1. Bytes flipped, with the server's sidecar: the checksum catches it.
  const newer = await placeBackup(s.remoteDir, NEW_A, { rows: 40 });
  await flipBytes(newer);
  let out = await sqlbk(pullArgs(s, local), { env: clientEnv(dir.path) });
  assertEquals(out.code, 3, out.stderr);
  assertStringIncludes(out.stderr, "failed verification");
  assertStringIncludes(out.stderr, "SHA-256");
  assertEquals(await visible(), kept);
  assertEquals(await Deno.readFile(join(local, OLD_A)), before);

  // 2. Bytes flipped, no sidecar: gunzip or integrity_check catches it; --keep-corrupt keeps it.
  await Deno.remove(`${newer}.sha256`);
  out = await sqlbk(pullArgs(s, local, "--keep-corrupt"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 3, out.stderr);
  assertEquals(await visible(), [...kept, `${NEW_A}.corrupt`].sort());
  await Deno.remove(join(local, `${NEW_A}.corrupt`));

  // 3. Truncated.
  await placeBackup(s.remoteDir, NEW_A, { rows: 40, sidecar: false });
  const data = await Deno.readFile(newer);
  await Deno.writeFile(newer, data.subarray(0, Math.floor(data.length * 0.6)));
  out = await sqlbk(pullArgs(s, local), { env: clientEnv(dir.path) });
  assertEquals(out.code, 3, out.stderr);
  assertStringIncludes(out.stderr, "corrupt or truncated");
  assertEquals(await visible(), kept);
  assertEquals(await Deno.readFile(join(local, OLD_A)), before);
});

Deno.test("sqlbk pull --decompress publishes <database>-latest.db and --keep-last prunes older copies", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const local = dir.join("p");
  await placeBackup(s.remoteDir, OLD_A, { rows: 11 });
  let out = await sqlbk(pullArgs(s, local, "--decompress"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals((await describe(join(local, "app-latest.db"))).counts.items, 11);
  await placeBackup(s.remoteDir, NEW_A, { rows: 22 });
  out = await sqlbk(pullArgs(s, local, "--decompress", "--keep-last", "1"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals((await describe(join(local, "app-latest.db"))).counts.items, 22);
  assertEquals((await listDir(local)).filter((n) => !n.startsWith(".")), [NEW_A, `${NEW_A}.sha256`, "app-latest.db"]);
});

/** Every process under the sshd listener: the per-connection monitors and their session children. */
async function sessionPids(listenerPid: number): Promise<number[]> {
  const all: number[] = [];
  let level = [listenerPid];
  while (level.length > 0) {
    const next: number[] = [];
    for (const pid of level) {
      const out = await run("pgrep", ["-P", String(pid)]);
      next.push(...out.stdout.trim().split("\n").filter((l) => l !== "").map(Number));
    }
    all.push(...next);
    level = next;
  }
  return all.reverse();
}

async function waitFor(cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function partialSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/** A backup big enough to interrupt: random payload, about 5 MiB of gzip. */
async function bigBackup(dir: string): Promise<string> {
  return await placeBackup(dir, NEW_A, { rows: 40_000, payload: 200 });
}

/** Kills every sshd session process (not the listener); asserts there was one. */
async function killSessions(s: Sshd): Promise<void> {
  const pids = await sessionPids(s.pid);
  assert(pids.length > 0, "a session to kill");
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch (err) {
      // Killed children first: a session process may exit on its own before its turn.
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/**
 * Serves a big backup from a server that pauses, once, after an eighth of it (the test's
 * SFTP server, tests/support/bad_sftpd.py, marks the moment with a file), kills the sshd
 * sessions then, and returns the pull's outcome. No race with the transfer: the kill
 * always lands mid-transfer, after the same byte.
 */
async function pullKilledMidTransfer(dir: TempDir, extra: string[]) {
  const served = dir.join("served");
  await Deno.mkdir(served);
  const archive = await bigBackup(served);
  const size = (await Deno.stat(archive)).size;
  const marker = dir.join("paused");
  const pauseAt = Math.floor(size / 8 / 4096) * 4096;
  const s = await startSshd({
    sftpSubsystem: `/usr/bin/python3 ${
      join(ROOT, "tests", "support", "bad_sftpd.py")
    } ${served} pause-once:${pauseAt}:${marker}`,
  });
  const local = dir.join("p");
  const partial = join(local, `${NEW_A}.partial`);
  const { spawnSqlbk } = await import("./support/db.ts");
  const child = spawnSqlbk(
    pullArgs(s, local, "--concurrency", "1", "--chunk-size", "4096", "--timeout", "30s", ...extra),
    { env: clientEnv(dir.path) },
  );
  let out: Deno.CommandOutput;
  try {
    await waitFor(() => exists(marker), 120_000);
    await waitFor(async () => (await partialSize(partial)) === pauseAt, 120_000);
    await killSessions(s);
  } finally {
    out = await child.output();
  }
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    server: s,
    archive,
    size,
    pauseAt,
    local,
    partial,
    code: out.code,
    stdout: decode(out.stdout),
    stderr: decode(out.stderr),
  };
}

Deno.test("sqlbk pull resumes after the connection is killed mid-transfer", async () => {
  await using dir = await tempDir();
  const { server, archive, local, code, stdout, stderr, pauseAt } = await pullKilledMidTransfer(dir, ["--json"]);
  await using _server = server;
  assertEquals(code, 0, stderr);
  assertStringIncludes(stderr, `from byte ${pauseAt} (attempt 1 of 3)`);
  const row = jsonLines(stdout)[0];
  assertEquals(row.verified, true);
  assertEquals(await Deno.readFile(join(local, NEW_A)), await Deno.readFile(archive));
  assert(!(await listDir(local)).some((n) => n.endsWith(".partial") || n.endsWith(".partial.json")));
});

Deno.test("sqlbk pull --retries 0 fails cleanly on a dropped connection, and the next run resumes the .partial", async () => {
  await using dir = await tempDir();
  const { server: s, archive, size, local, partial, code, stderr, pauseAt } = await pullKilledMidTransfer(dir, [
    "--retries",
    "0",
  ]);
  await using _server = s;
  assertEquals(code, 1, stderr);
  assertStringIncludes(stderr, "Connection to");
  const names = await listDir(local);
  assert(!names.includes(NEW_A), "no file under the final name");
  assert(names.includes(`${NEW_A}.partial`));
  const kept = await partialSize(partial);
  assertEquals(kept, pauseAt);
  assert(kept > 0 && kept < size);

  const out = await sqlbk(pullArgs(s, local, "--json"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stderr, `resuming ${NEW_A} at ${kept} of ${size} bytes`);
  assertEquals(await Deno.readFile(join(local, NEW_A)), await Deno.readFile(archive));
});

Deno.test("sqlbk pull starts over when the remote file changed since the .partial was written", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const local = dir.join("p");
  await Deno.mkdir(local);
  const archive = await placeBackup(s.remoteDir, NEW_A, { rows: 50 });
  // A .partial from another file of the same name (its state says another size).
  await Deno.writeTextFile(join(local, `${NEW_A}.partial`), "garbage that must not be kept");
  await Deno.writeTextFile(
    join(local, `${NEW_A}.partial.json`),
    JSON.stringify({ remotePath: join(s.remoteDir, NEW_A), size: 1, mtime: 1 }),
  );
  const out = await sqlbk(pullArgs(s, local), { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assert(!out.stderr.includes("resuming"));
  assertEquals(await Deno.readFile(join(local, NEW_A)), await Deno.readFile(archive));
});

/** In-process pull options against a test server: 5 retries 200 ms apart, log lines into `logs`. */
function retryingOptions(server: Sshd, dir: TempDir, logs: string[]) {
  return {
    port: server.port,
    identityFiles: [server.clientKey],
    knownHostsFile: server.knownHosts,
    agentSocket: null,
    sshConfigPath: server.sshConfig,
    localDir: dir.join("pulled"),
    retries: 5,
    retryDelayMs: 200,
    onLog: (line: string) => logs.push(line),
  };
}

Deno.test("pull() retries a refused first connection and succeeds once the server is back", async () => {
  const { pull } = await import("../src/pull/pull.ts");
  await using dir = await tempDir();
  await using server = await startSshd();
  await placeBackup(server.remoteDir, NEW_A);
  await server.stop();
  const logs: string[] = [];
  const pulling = pull(`${server.user}@127.0.0.1:${server.remoteDir}`, retryingOptions(server, dir, logs));
  let settled = false;
  pulling.then(() => settled = true, () => settled = true);
  // The same sshd, same port and keys, back after the first refusal.
  while (logs.length === 0 && !settled) await new Promise((r) => setTimeout(r, 20));
  const again = new Deno.Command("/usr/sbin/sshd", {
    args: ["-D", "-e", "-f", join(server.dir, "sshd_config")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const results = await pulling;
    assertEquals(results.map((r) => r.file), [NEW_A]);
    assertStringIncludes(logs[0], "retrying in 0.2s (attempt 1 of 5)");
  } finally {
    again.kill("SIGTERM");
    await again.status;
  }
});

Deno.test("pull() does not retry an authentication failure", async () => {
  const { pull } = await import("../src/pull/pull.ts");
  await using dir = await tempDir();
  await using server = await startSshd();
  await placeBackup(server.remoteDir, NEW_A);
  const stranger = await keygen(dir.join("stranger"));
  const logs: string[] = [];
  const err = await pull(`${server.user}@127.0.0.1:${server.remoteDir}`, {
    ...retryingOptions(server, dir, logs),
    identityFiles: [stranger],
  }).then(() => null, (e) => e);
  assert(err instanceof Error && /auth|rejected|denied/i.test(err.message), String(err));
  assertEquals(logs.filter((l) => l.includes("retrying")), []);
});
