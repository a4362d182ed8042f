import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { DENO_DIR, listDir, run, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { keygen, pullArgs, startAgent, startSshd } from "./support/sshd.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
function env(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { HOME: home, SSH_AUTH_SOCK: "", DENO_DIR, ...extra };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  return lines[0];
}

Deno.test("sqlbk pull rejects bad targets and flags with exit 2 and one line", async () => {
  await using dir = await tempDir();
  const cases: [string[], string][] = [
    [["pull"], "Nothing to pull from"],
    [["pull", "justahost"], `Invalid target "justahost"`],
    [["pull", "sftp://db1:99999/x"], `port "99999"`],
    [["pull", "db1:/x", "db2:/y"], "Too many arguments"],
    [["pull", "db1:/x", "--retries", "many"], `Invalid --retries "many"`],
    [["pull", "db1:/x", "--port", "0"], `Invalid --port "0"`],
    [["pull", "db1:/x", "--timeout", "soon"], `Invalid --timeout "soon"`],
    [["pull", "db1:/x", "--bogus"], `Unknown option '--bogus'`],
    [["pull", "db1:/x", "--chunk-size", "999999"], "--chunk-size"],
    [
      ["pull", "db1:/x", "--keep-last", "-1"],
      `Invalid --keep-last "-1": a value starting with "-" reads as a flag; write --keep-last=-1`,
    ],
    [["pull", "db1:/x", "--keep-last=-1"], `Invalid --keep-last "-1": expected a whole number of at least 0`],
    [["list"], "Give one DIR or TARGET"],
  ];
  for (const [args, msg] of cases) {
    const out = await sqlbk(args, { env: env(dir.path) });
    assertEquals(out.code, 2, `${args.join(" ")}: ${out.stderr}`);
    assertStringIncludes(oneLine(out.stderr), msg);
  }
  const cfg = dir.join("bad.toml");
  await Deno.writeTextFile(cfg, `[pull]\nhost = "db1"\nremote_directory = "/x"\n`);
  const out = await sqlbk(["pull", "--config", cfg], { env: env(dir.path) });
  assertEquals(out.code, 2);
  assertStringIncludes(oneLine(out.stderr), `unknown key "remote_directory" in [pull]; known keys: host, port, user`);
});

Deno.test("sqlbk pull reports connection refused, unknown host, timeout and a missing remote directory in one line", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const common = ["-i", s.clientKey, "--known-hosts", s.knownHosts, "--ssh-config", s.sshConfig, "--to", dir.join("p")];

  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  // --retries 0: the error alone (retries of a refused connection are tested in pull_test.ts).
  let out = await sqlbk(["pull", `127.0.0.1:/x`, "--port", String(closedPort), "--retries", "0", ...common], {
    env: env(dir.path),
  });
  assertEquals(out.code, 1);
  assertStringIncludes(oneLine(out.stderr), "connection refused");

  out = await sqlbk(["pull", "no-such-host.invalid:/x", ...common], { env: env(dir.path) });
  assertEquals(out.code, 1);
  assertStringIncludes(oneLine(out.stderr), "unknown host name");

  // A server that accepts TCP and never speaks SSH.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    const port = (silent.addr as Deno.NetAddr).port;
    const started = Date.now();
    out = await sqlbk(
      ["pull", `127.0.0.1:/x`, "--port", String(port), "--timeout", "1s", "--retries", "0", ...common],
      {
        env: env(dir.path),
      },
    );
    assertEquals(out.code, 1);
    assertStringIncludes(oneLine(out.stderr), "timed out after 1s");
    if (Date.now() - started > 15_000) throw new Error("the timeout was not honoured");
  } finally {
    silent.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
  }

  out = await sqlbk(["pull", `127.0.0.1:${s.remoteDir}/missing`, "--port", String(s.port), ...common], {
    env: env(dir.path),
  });
  assertEquals(out.code, 1);
  assertStringIncludes(oneLine(out.stderr), `list remote directory "${s.remoteDir}/missing"`);
  assertStringIncludes(out.stderr, "no such directory");
});

Deno.test("sqlbk pull --config reads the [pull] table", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  await placeBackup(s.remoteDir, "auth-2025-03-01T00-00-00Z-online.bck.gz", { rows: 5 });
  const cfg = dir.join("pull.toml");
  await Deno.writeTextFile(
    cfg,
    `[pull]
host = "127.0.0.1"
port = ${s.port}
user = "${s.user}"
identity_file = "${s.clientKey}"
remote_dir = "${s.remoteDir}"
local_dir = "${dir.join("local")}"
known_hosts = "${s.knownHosts}"
ssh_config = "${s.sshConfig}"
ssh_options = ["ConnectionAttempts=1"]
keep_last = 2
databases = ["app"]
`,
  );
  const out = await sqlbk(["pull", "--config", cfg, "--json"], { env: env(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(JSON.parse(out.stdout).file, NAME);
  assertEquals((await listDir(dir.join("local"))).filter((n) => !n.startsWith(".")), [NAME, `${NAME}.sha256`]);
});

Deno.test("sqlbk pull follows a Host alias of --ssh-config, with its IdentityFile and UserKnownHostsFile", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  const config = dir.join("ssh_config");
  await Deno.writeTextFile(
    config,
    `Host backupbox\n  HostName 127.0.0.1\n  Port ${s.port}\n  User ${s.user}\n  IdentityFile ${s.clientKey}\n` +
      `  UserKnownHostsFile ${s.knownHosts}\n  GlobalKnownHostsFile /dev/null\n`,
  );
  const out = await sqlbk(["pull", `backupbox:${s.remoteDir}`, "--ssh-config", config, "--to", dir.join("p")], {
    env: env(dir.path),
  });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), join(dir.join("p"), NAME));

  const list = await sqlbk(["list", `backupbox:${s.remoteDir}`, "--ssh-config", config, "--json"], {
    env: env(dir.path),
  });
  assertEquals(list.code, 0, list.stderr);
  const row = JSON.parse(list.stdout);
  assertEquals([row.file, row.verified, row.latest], [NAME, null, true]);
});

Deno.test("sqlbk pull with an encrypted key and no agent fails unattended with a hint, and works through ssh-agent", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  const key = await keygen(dir.join("enc_key"), "ed25519", "secret words");
  await Deno.writeTextFile(join(s.dir, "authorized_keys"), await Deno.readTextFile(`${key}.pub`), { append: true });
  const args = ["pull", `127.0.0.1:${s.remoteDir}`, "--port", String(s.port), "--ssh-config", s.sshConfig, "--to"];
  // stdin is not a terminal: BatchMode, so ssh cannot ask for the passphrase.
  let out = await sqlbk([...args, dir.join("p"), "-i", key], { env: env(dir.path) });
  assertEquals(out.code, 1);
  const line = oneLine(out.stderr);
  assertStringIncludes(line, "Authentication as");
  assertStringIncludes(line, "ssh-agent");
  assertStringIncludes(line, key);

  // The same key decrypted into a real ssh-agent, and no identity file given at all.
  await using agent = await startAgent(dir.join("agent.sock"));
  const plain = dir.join("plain_key");
  const copy = await run("sh", [
    "-c",
    `cp '${key}' '${plain}' && ssh-keygen -q -p -P 'secret words' -N '' -f '${plain}'`,
  ]);
  assertEquals(copy.code, 0, copy.stderr);
  const added = await run("ssh-add", [plain], { env: { SSH_AUTH_SOCK: agent.socket } });
  assertEquals(added.code, 0, added.stderr);
  await Deno.remove(plain);
  out = await sqlbk([...args, dir.join("p")], { env: env(dir.path, { SSH_AUTH_SOCK: agent.socket }) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), join(dir.join("p"), NAME));
});

Deno.test("sqlbk pull without an ssh binary says how to get one (exit 2), and SQLBK_SSH names another", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  const missing = dir.join("no-such-ssh");
  let out = await sqlbk(pullArgs(s, dir.join("p")), { env: env(dir.path, { SQLBK_SSH: missing }) });
  assertEquals(out.code, 2, out.stderr);
  const line = oneLine(out.stderr);
  assertStringIncludes(line, `Cannot run the OpenSSH client "${missing}": not found`);
  assertStringIncludes(line, "openssh-client");
  assertStringIncludes(line, "SQLBK_SSH");
  // An empty PATH: no ssh found there either.
  out = await sqlbk(pullArgs(s, dir.join("p")), { env: { ...env(dir.path), PATH: dir.path } });
  assertEquals(out.code, 2, out.stderr);
  assertStringIncludes(oneLine(out.stderr), `"ssh": not found on PATH`);
  // A wrapper named by SQLBK_SSH is what runs.
  const wrapper = dir.join("ssh-wrapper");
  await Deno.writeTextFile(wrapper, `#!/bin/sh\necho "$*" >> '${dir.join("ran")}'\nexec ssh "$@"\n`);
  await Deno.chmod(wrapper, 0o755);
  out = await sqlbk(pullArgs(s, dir.join("p")), { env: env(dir.path, { SQLBK_SSH: wrapper }) });
  assertEquals(out.code, 0, out.stderr);
  // The session itself went through it (ssh -G, which reads the effective cipher list, may too).
  assert((await Deno.readTextFile(dir.join("ran"))).split("\n").some((l) => l.endsWith("-s -- 127.0.0.1 sftp")));
});

Deno.test("sqlbk pull with no cipher in common fails at once with both offers, and is not retried", async () => {
  await using s = await startSshd({ config: ["Ciphers aes256-ctr"] });
  await using dir = await tempDir();
  const config = dir.join("ssh_config");
  await Deno.writeTextFile(config, `${await Deno.readTextFile(s.sshConfig)}  Ciphers chacha20-poly1305@openssh.com\n`);
  const args = pullArgs(s, dir.join("p")).map((a) => (a === s.sshConfig ? config : a));
  const out = await sqlbk(args, { env: env(dir.path) });
  assertEquals(out.code, 1, out.stderr);
  const line = oneLine(out.stderr);
  assertStringIncludes(line, "no algorithm in common");
  assertStringIncludes(line, "aes256-ctr");
  assert(!out.stderr.includes("retrying"));
});
