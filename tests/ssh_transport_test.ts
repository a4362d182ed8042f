import { assert, assertEquals, assertRejects, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { run, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { pullArgs, type Sshd, sshdConnectOptions, startAgent, startSshd } from "./support/sshd.ts";
import { type ConnectOptions, connectSftp, SshError } from "../src/pull/transport.ts";
import { downloadRange } from "../src/pull/download.ts";

function options(s: Sshd, extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return { ...sshdConnectOptions(s), ...extra };
}

async function randomFile(path: string, bytes: number): Promise<string> {
  const out = await run("sh", ["-c", `head -c ${bytes} /dev/urandom > '${path}' && sha256sum '${path}'`]);
  assertEquals(out.code, 0, out.stderr);
  return out.stdout.split(" ")[0];
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

Deno.test("the transport verifies ecdsa and rsa host keys and lists the directory", async () => {
  for (const type of ["ecdsa", "rsa"] as const) {
    await using s = await startSshd({ hostKeyType: type });
    await Deno.writeTextFile(join(s.remoteDir, "x.txt"), "hello");
    await using session = await connectSftp(options(s));
    const names = (await session.list(s.remoteDir)).map((e) => e.name);
    assertEquals(names, ["x.txt"], type);
    assertEquals(await session.readText(join(s.remoteDir, "x.txt")), "hello");
  }
});

Deno.test("the transport authenticates with rsa, ecdsa and PEM identity files", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  for (
    const [name, args] of [["rsa", ["-t", "rsa", "-b", "2048"]], ["ecdsa", ["-t", "ecdsa", "-b", "384"]], [
      "pem",
      ["-t", "rsa", "-b", "2048", "-m", "PEM"],
    ]] as const
  ) {
    const key = join(dir.path, name);
    const out = await run("ssh-keygen", ["-q", ...args, "-N", "", "-C", "t", "-f", key]);
    assertEquals(out.code, 0, out.stderr);
    // Not yet authorized: rejected, naming the key tried.
    const err = await assertRejects(() => connectSftp(options(s, { identityFiles: [key] })), SshError);
    assertEquals((err as SshError).kind, "auth");
    assertStringIncludes(err.message, key);
    await Deno.writeTextFile(join(s.dir, "authorized_keys"), await Deno.readTextFile(`${key}.pub`), { append: true });
    await using session = await connectSftp(options(s, { identityFiles: [key] }));
    assertEquals((await session.stat(s.remoteDir)).isFile, false);
  }
});

Deno.test("the transport authenticates with a key only in a real ssh-agent, and names the agent key it offered when refused", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await using agent = await startAgent(join(dir.path, "agent.sock"));
  const stranger = await run("ssh-keygen", [
    "-q",
    "-t",
    "ed25519",
    "-N",
    "",
    "-C",
    "stranger-key",
    "-f",
    dir.join("stranger"),
  ]);
  assertEquals(stranger.code, 0, stranger.stderr);
  let add = await run("ssh-add", [dir.join("stranger")], { env: { SSH_AUTH_SOCK: agent.socket } });
  assertEquals(add.code, 0, add.stderr);
  const viaAgent = options(s, { identityFiles: undefined, agentSocket: agent.socket });
  const refused = await assertRejects(() => connectSftp(viaAgent), SshError);
  assertEquals((refused as SshError).kind, "auth");
  assertStringIncludes(refused.message, "tried: stranger-key");
  add = await run("ssh-add", [s.clientKey], { env: { SSH_AUTH_SOCK: agent.socket } });
  assertEquals(add.code, 0, add.stderr);
  await using session = await connectSftp(viaAgent);
  assertEquals((await session.stat(s.remoteDir)).isFile, false);
});

Deno.test("a download survives server-initiated re-keying (RekeyLimit 1M) and matches byte for byte", async () => {
  await using s = await startSshd({ config: ["RekeyLimit 1M", "LogLevel DEBUG1"] });
  await using dir = await tempDir();
  const remote = join(s.remoteDir, "blob.bin");
  const size = 12 * 1024 * 1024 + 123;
  const expected = await randomFile(remote, size);
  await using session = await connectSftp(options(s));
  const local = join(dir.path, "blob");
  assertEquals(
    await downloadRange(session, remote, { localPath: local, size, chunkSize: 65536, concurrency: 16 }),
    size,
  );
  assertEquals(await sha256(local), expected);
  // The session is still usable after the re-keys.
  assertEquals((await session.stat(remote)).size, size);
  // Every 1 MiB each way the server re-keyed: many key exchanges, not just the first two.
  const kexes = s.log().split("\n").filter((l) => l.includes("SSH2_MSG_NEWKEYS received")).length;
  assert(kexes > 10, `re-keys seen in the sshd log: ${kexes}`);
});

for (
  const [what, config, cipher] of [
    ["only chacha20-poly1305", ["Ciphers chacha20-poly1305@openssh.com"], "chacha20-poly1305@openssh.com"],
    ["only aes-ctr", ["Ciphers aes128-ctr,aes256-ctr"], "aes"],
    ["only ecdh-sha2-nistp256 key exchange", ["KexAlgorithms ecdh-sha2-nistp256"], ""],
    ["only sntrup761x25519 key exchange", ["KexAlgorithms sntrup761x25519-sha512@openssh.com"], ""],
    ["only diffie-hellman-group14 key exchange", ["KexAlgorithms diffie-hellman-group14-sha256"], ""],
  ] as const
) {
  Deno.test(`a server offering ${what} serves a download that matches byte for byte`, async () => {
    await using s = await startSshd({ config: [...config] });
    await using dir = await tempDir();
    const remote = join(s.remoteDir, "blob.bin");
    const size = 3 * 1024 * 1024 + 7;
    const expected = await randomFile(remote, size);
    await using session = await connectSftp(options(s));
    if (cipher) assertStringIncludes(session.cipher, cipher);
    if (cipher === "aes") assert(/^aes\d+-ctr$/.test(session.cipher), session.cipher);
    const local = join(dir.path, "blob");
    assertEquals(await downloadRange(session, remote, { localPath: local, size }), size);
    assertEquals(await sha256(local), expected);
  });
}

Deno.test("SFTP errors map to one line: a missing file, and a file the user may not read", async () => {
  await using s = await startSshd();
  await using session = await connectSftp(options(s));
  let err = await assertRejects(() => session.stat(join(s.remoteDir, "nope")), SshError);
  assertEquals((err as SshError).kind, "not-found");
  err = await assertRejects(() => session.list(join(s.remoteDir, "nope")), SshError);
  assertStringIncludes(err.message, "no such directory");
  if (s.user !== "root") {
    const secret = join(s.remoteDir, "secret");
    await Deno.writeTextFile(secret, "x");
    await Deno.chmod(secret, 0);
    err = await assertRejects(() => session.open(secret), SshError);
    assertEquals((err as SshError).kind, "permission");
  }
});

/** Process ids descended from `pid` (from `ps`). */
async function descendants(pid: number): Promise<number[]> {
  const out = await run("ps", ["-e", "-o", "pid=,ppid="]);
  assertEquals(out.code, 0, out.stderr);
  const parents = new Map<number, number>();
  for (const line of out.stdout.trim().split("\n")) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    parents.set(child, parent);
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) {
      if (parent === p) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

Deno.test("a server that stops answering mid-download fails the download as a retryable timeout, keeping the bytes received", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const remote = join(s.remoteDir, "big.bin");
  const size = 64 * 1024 * 1024;
  await randomFile(remote, size);
  await using session = await connectSftp(options(s));
  const local = join(dir.path, "big.bin.partial");
  let stopped: number[] = [];
  let received = 0;
  const started = Date.now();
  try {
    const err = await assertRejects(() =>
      downloadRange(session, remote, {
        localPath: local,
        size,
        stallTimeoutMs: 1000,
        concurrency: 2,
        chunkSize: 32768,
        onProgress: (bytes) => {
          received = bytes;
          if (stopped.length === 0 && bytes >= 1024 * 1024) {
            // Freeze the connection's sshd processes (not the listener): the socket stays open, silent.
            stopped = [-1];
            descendants(s.pid).then((pids) => {
              stopped = pids;
              for (const pid of pids) Deno.kill(pid, "SIGSTOP");
            });
          }
        },
      }), SshError);
    assertEquals((err as SshError).kind, "timeout");
    assert((err as SshError).retryable, "a stall is worth a retry");
    assertStringIncludes(err.message, "No data from");
    assert(Date.now() - started < 20_000, "failed within seconds, not hanging");
    assert(stopped.length > 0 && stopped[0] !== -1, "sshd's session processes were frozen");
    const kept = (await Deno.stat(local)).size;
    assert(kept >= 1024 * 1024 && kept <= received, `bytes kept for a resume: ${kept} (received ${received})`);
  } finally {
    for (const pid of stopped) if (pid > 0) Deno.kill(pid, "SIGCONT");
  }
});

Deno.test("an explicit SQLBK_LIBZ that does not load is a configuration error (exit 2), not a silent fallback", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const name = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
  await placeBackup(s.remoteDir, name, { rows: 10 });
  const missing = dir.join("no-such-lib.so");
  const out = await sqlbk(pullArgs(s, dir.join("p")), {
    env: { HOME: dir.path, SSH_AUTH_SOCK: "", SQLBK_LIBZ: missing },
  });
  assertEquals(out.code, 2, out.stderr);
  assertStringIncludes(out.stderr, `Cannot load SQLBK_LIBZ="${missing}"`);
  const verify = await sqlbk(["verify", join(s.remoteDir, name)], { env: { SQLBK_LIBZ: missing } });
  assertEquals(verify.code, 2, verify.stderr);
  assertStringIncludes(verify.stderr, `Cannot load SQLBK_LIBZ="${missing}"`);
});

Deno.test("ssh is asked for AES-GCM first only when no Ciphers is configured; a Ciphers line in the ssh config wins", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const aes = Deno.build.os !== "linux" || (await run("grep", ["-qw", "aes", "/proc/cpuinfo"])).code === 0;
  {
    await using session = await connectSftp(options(s));
    assertEquals(session.cipher, aes ? "aes128-gcm@openssh.com" : "chacha20-poly1305@openssh.com");
  }
  {
    await using session = await connectSftp(options(s, { preferAesGcm: false }));
    assertEquals(session.cipher, "chacha20-poly1305@openssh.com");
  }
  const config = dir.join("ssh_config");
  await Deno.writeTextFile(
    config,
    `${await Deno.readTextFile(s.sshConfig)}  Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com\n`,
  );
  await using session = await connectSftp(options(s, { sshConfigPath: config }));
  assertEquals(session.cipher, "chacha20-poly1305@openssh.com");
});

Deno.test("OpenSSH's sftp server reports its limits, and the download reads 261120 bytes per request", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const remote = join(s.remoteDir, "blob.bin");
  const size = 3 * 261120 + 7;
  const hash = await randomFile(remote, size);
  await using session = await connectSftp(options(s));
  const limits = await session.sftp.limits();
  assertEquals(limits?.maxReadLength, 261120);
  assert((limits?.maxPacketLength ?? 0) >= 261120, `max packet ${limits?.maxPacketLength}`);
  const local = join(dir.path, "blob.bin");
  const sizes: number[] = [];
  const read = session.sftp.read.bind(session.sftp);
  session.sftp.read = (handle, buffer, offset, length, position, cb) => {
    sizes.push(length);
    read(handle, buffer, offset, length, position, cb);
  };
  assertEquals(await downloadRange(session, remote, { localPath: local, size }), size);
  assertEquals(await sha256(local), hash);
  assertEquals(sizes, [261120, 261120, 261120, 7]);
});
