import { assert, assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { clientEnv, listDir, run, spawnSqlbk, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { keygen, pullArgs, startSshd } from "./support/sshd.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
async function ok(cmd: string, args: string[]): Promise<string> {
  const out = await run(cmd, args);
  assertEquals(out.code, 0, `${cmd} ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

/** The public key line (`type base64`) of a key pair. */
async function publicLine(key: string): Promise<string> {
  return (await Deno.readTextFile(`${key}.pub`)).trim().split(/\s+/).slice(0, 2).join(" ");
}

Deno.test("sqlbk pull logs in with a user certificate signed by a CA the server trusts (TrustedUserCAKeys)", async () => {
  await using dir = await tempDir();
  const ca = await keygen(dir.join("user_ca"));
  await using s = await startSshd({ config: [`TrustedUserCAKeys ${ca}.pub`] });
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  // A key that is not in authorized_keys: only its certificate lets it in.
  const key = await keygen(dir.join("cert_key"));
  await ok("ssh-keygen", ["-q", "-s", ca, "-I", "sqlbk-cert-test", "-n", s.user, "-V", "-5m:+1h", `${key}.pub`]);
  const args = pullArgs(s, dir.join("p")).map((a) => (a === s.clientKey ? key : a));
  const out = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), join(dir.join("p"), NAME));
  assertStringIncludes(s.log(), `ID sqlbk-cert-test`);
});

Deno.test("sqlbk pull accepts a host certificate through a @cert-authority known_hosts line, and refuses without it", async () => {
  await using dir = await tempDir();
  const ca = await keygen(dir.join("host_ca"));
  const keys = dir.join("hostkeys");
  await Deno.mkdir(keys);
  const hostKey = await keygen(join(keys, "ssh_host_key"));
  await ok("ssh-keygen", ["-q", "-s", ca, "-I", "test-host", "-h", "-n", "127.0.0.1", `${hostKey}.pub`]);
  await using s = await startSshd({ hostKeyFrom: keys, config: [`HostCertificate ${hostKey}-cert.pub`] });
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  const kh = dir.join("known_hosts");
  const args = pullArgs(s, dir.join("p")).map((a) => (a === s.knownHosts ? kh : a));
  // known_hosts trusts only the CA, never the host's own key.
  await Deno.writeTextFile(kh, `@cert-authority [127.0.0.1]:${s.port} ${await publicLine(ca)}\n`);
  const out = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), join(dir.join("p"), NAME));

  // Another CA: the certificate proves nothing, and the host is refused.
  const other = await keygen(dir.join("other_ca"));
  await Deno.writeTextFile(kh, `@cert-authority [127.0.0.1]:${s.port} ${await publicLine(other)}\n`);
  const refused = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(refused.code, 1, refused.stderr);
  assertStringIncludes(refused.stderr, `Host "[127.0.0.1]:${s.port}" is not in "${kh}"`);
  assertStringIncludes(refused.stderr, "certificate, key fingerprint SHA256:");
  assertEquals(refused.stderr.trim().split("\n").length, 1, refused.stderr);
});

Deno.test("sqlbk pull goes through a ProxyJump host set in --ssh-config, and the jump host's log shows the hop", async () => {
  await using dir = await tempDir();
  await using target = await startSshd();
  // The jump host may forward to the target only: a connection straight to the target is not what is tested.
  await using jump = await startSshd({ config: ["AllowTcpForwarding yes", `PermitOpen 127.0.0.1:${target.port}`] });
  await Deno.copyFile(join(target.dir, "authorized_keys"), join(jump.dir, "authorized_keys"));
  await placeBackup(target.remoteDir, NAME, { rows: 5 });
  const kh = dir.join("known_hosts");
  await Deno.writeTextFile(
    kh,
    (await Deno.readTextFile(target.knownHosts)) + (await Deno.readTextFile(jump.knownHosts)),
  );
  const config = dir.join("ssh_config");
  await Deno.writeTextFile(
    config,
    `Host backupbox
  HostName 127.0.0.1
  Port ${target.port}
  ProxyJump ${jump.user}@127.0.0.1:${jump.port}
Host *
  IdentityFile ${target.clientKey}
  UserKnownHostsFile ${kh}
  GlobalKnownHostsFile /dev/null
  BatchMode yes
`,
  );
  const out = await sqlbk(["pull", `backupbox:${target.remoteDir}`, "--ssh-config", config, "--to", dir.join("p")], {
    env: clientEnv(dir.path),
  });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), join(dir.join("p"), NAME));
  // The jump host saw the login that ssh -W opens the forward through (nothing else logs in there).
  assertMatch(jump.log(), /Accepted publickey for \S+ from 127\.0\.0\.1/);
});

Deno.test("sqlbk pull refuses a host key of a new type for a known host, even with --accept-new", async () => {
  await using dir = await tempDir();
  // The server offers only an RSA key; known_hosts has an ED25519 key for it.
  await using s = await startSshd({ hostKeyType: "rsa" });
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  const other = await keygen(dir.join("other"));
  const kh = dir.join("known_hosts");
  const before = `[127.0.0.1]:${s.port} ${await publicLine(other)}\n`;
  await Deno.writeTextFile(kh, before);
  const args = pullArgs(s, dir.join("p"), "--accept-new").map((a) => (a === s.knownHosts ? kh : a));
  const out = await sqlbk(args, { env: clientEnv(dir.path) });
  assertEquals(out.code, 1, out.stderr);
  const line = out.stderr.trim();
  assertEquals(line.split("\n").length, 1, out.stderr);
  assertStringIncludes(line, "REMOTE HOST IDENTIFICATION HAS CHANGED");
  assertStringIncludes(line, "RSA key fingerprint SHA256:");
  assertStringIncludes(line, "ED25519 key");
  assertStringIncludes(line, "--accept-new never replaces a known key");
  assertEquals(await Deno.readTextFile(kh), before);
  assert(!(await listDir(dir.path)).includes("p") || (await listDir(dir.join("p"))).every((n) => n.startsWith(".")));
});

/** Every process under `pid` (sshd's per-connection processes). */
async function descendants(pid: number): Promise<number[]> {
  const found: number[] = [];
  let level = [pid];
  while (level.length > 0) {
    const next: number[] = [];
    for (const p of level) {
      const out = await run("pgrep", ["-P", String(p)]);
      next.push(...out.stdout.trim().split("\n").filter((l) => l !== "").map(Number));
    }
    found.push(...next);
    level = next;
  }
  return found;
}

Deno.test("sqlbk pull from a server stopped (SIGSTOP) mid-download fails within the timeout and keeps the bytes for a resume", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const archive = await placeBackup(s.remoteDir, NAME, { rows: 40_000, payload: 200 });
  const size = (await Deno.stat(archive)).size;
  const local = dir.join("p");
  const partial = join(local, `${NAME}.partial`);
  const child = spawnSqlbk(
    pullArgs(s, local, "--concurrency", "1", "--chunk-size", "4096", "--timeout", "2s", "--retries", "0"),
    { env: clientEnv(dir.path) },
  );
  let stopped: number[] = [];
  let stoppedAt = 0;
  let out: Deno.CommandOutput;
  try {
    const end = Date.now() + 60_000;
    while ((await Deno.stat(partial).then((st) => st.size, () => 0)) < size / 8) {
      if (Date.now() > end) throw new Error("the download never started");
      await new Promise((r) => setTimeout(r, 20));
    }
    stopped = await descendants(s.pid);
    assert(stopped.length > 0, "a session to stop");
    for (const pid of stopped) Deno.kill(pid, "SIGSTOP");
    stoppedAt = Date.now();
  } finally {
    out = await child.output();
    for (const pid of stopped) Deno.kill(pid, "SIGCONT");
  }
  const elapsed = Date.now() - stoppedAt;
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 1, stderr);
  assert(elapsed < 20_000, `gave up after ${elapsed} ms, not within the 2s timeout (plus slack)`);
  assertMatch(stderr, /No data from|No reply from|not responding|timed out|was lost/);
  const kept = (await Deno.stat(partial)).size;
  assert(kept >= size / 8 && kept < size, `bytes kept for a resume: ${kept} of ${size}`);

  // The next run resumes from there.
  const again = await sqlbk(pullArgs(s, local), { env: clientEnv(dir.path) });
  assertEquals(again.code, 0, again.stderr);
  assertStringIncludes(again.stderr, `resuming ${NAME} at ${kept} of ${size} bytes`);
  assertEquals(await Deno.readFile(join(local, NAME)), await Deno.readFile(archive));
});

Deno.test("sqlbk pull fetches from a paramiko SFTP server (not OpenSSH)", async () => {
  await using dir = await tempDir();
  const hostKey = await keygen(dir.join("host_key"));
  const clientKey = await keygen(dir.join("client_key"));
  const remote = dir.join("remote");
  await Deno.mkdir(remote);
  await placeBackup(remote, NAME, { rows: 50 });
  const script = new URL("./support/paramiko_sftpd.py", import.meta.url).pathname;
  // Debian's python3-paramiko is in the system Python (a pyenv or venv python3 on PATH may lack it).
  const server = new Deno.Command("/usr/bin/python3", {
    args: [script, hostKey, `${clientKey}.pub`],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = server.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the paramiko server did not start");
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const port = Number(text.trim());
    const kh = dir.join("known_hosts");
    await Deno.writeTextFile(kh, `[127.0.0.1]:${port} ${await publicLine(hostKey)}\n`);
    const config = dir.join("ssh_config");
    await Deno.writeTextFile(config, `Host *\n  GlobalKnownHostsFile /dev/null\n`);
    const out = await sqlbk([
      "pull",
      `127.0.0.1:${remote}`,
      "--port",
      String(port),
      "-i",
      clientKey,
      "--known-hosts",
      kh,
      "--ssh-config",
      config,
      "--to",
      dir.join("p"),
      "--json",
    ], { env: clientEnv(dir.path) });
    assertEquals(out.code, 0, out.stderr);
    assertEquals(JSON.parse(out.stdout).file, NAME);
    assertEquals(await Deno.readFile(join(dir.join("p"), NAME)), await Deno.readFile(join(remote, NAME)));
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
});
