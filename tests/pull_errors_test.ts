import { assertEquals, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { listDir, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { keygen, startSshd } from "./support/sshd.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
const DENO_DIR = Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");

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
  const common = ["-i", s.clientKey, "--known-hosts", s.knownHosts, "--to", dir.join("p")];

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
keep_last = 2
databases = ["app"]
`,
  );
  const out = await sqlbk(["pull", "--config", cfg, "--json"], { env: env(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(JSON.parse(out.stdout).file, NAME);
  assertEquals((await listDir(dir.join("local"))).filter((n) => !n.startsWith(".")), [NAME, `${NAME}.sha256`]);
});

Deno.test("sqlbk pull follows a Host alias in ~/.ssh/config and uses ~/.ssh/known_hosts", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  const ssh = dir.join(".ssh");
  await Deno.mkdir(ssh, { mode: 0o700 });
  await Deno.copyFile(s.clientKey, join(ssh, "backup_key"));
  await Deno.writeTextFile(
    join(ssh, "config"),
    `Host backupbox\n  HostName 127.0.0.1\n  Port ${s.port}\n  User ${s.user}\n  IdentityFile ~/.ssh/backup_key\n`,
  );
  await Deno.copyFile(s.knownHosts, join(ssh, "known_hosts"));
  const out = await sqlbk(["pull", `backupbox:${s.remoteDir}`, "--to", dir.join("p")], { env: env(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  assertEquals(out.stdout.trim(), join(dir.join("p"), NAME));

  // The default identity file ~/.ssh/id_ed25519 is used when nothing else is configured.
  await Deno.copyFile(s.clientKey, join(ssh, "id_ed25519"));
  await Deno.writeTextFile(join(ssh, "config"), `Host backupbox\n  HostName 127.0.0.1\n  Port ${s.port}\n`);
  const list = await sqlbk(["list", `backupbox:${s.remoteDir}`, "--json"], { env: env(dir.path) });
  assertEquals(list.code, 0, list.stderr);
  const row = JSON.parse(list.stdout);
  assertEquals([row.file, row.verified, row.latest], [NAME, null, true]);
});

Deno.test("sqlbk pull decrypts an encrypted identity with SQLBK_SSH_PASSPHRASE, and says so when it cannot", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, NAME, { rows: 5 });
  const key = await keygen(dir.join("enc_key"), "ed25519", "secret words");
  await Deno.writeTextFile(join(s.dir, "authorized_keys"), await Deno.readTextFile(`${key}.pub`), { append: true });
  const args = [
    "pull",
    `127.0.0.1:${s.remoteDir}`,
    "--port",
    String(s.port),
    "-i",
    key,
    "--known-hosts",
    s.knownHosts,
    "--to",
    dir.join("p"),
  ];
  let out = await sqlbk(args, { env: env(dir.path) });
  assertEquals(out.code, 2);
  assertStringIncludes(oneLine(out.stderr), "SQLBK_SSH_PASSPHRASE");
  out = await sqlbk(args, { env: env(dir.path, { SQLBK_SSH_PASSPHRASE: "wrong" }) });
  assertEquals(out.code, 2);
  assertStringIncludes(oneLine(out.stderr), "wrong passphrase");
  out = await sqlbk(args, { env: env(dir.path, { SQLBK_SSH_PASSPHRASE: "secret words" }) });
  assertEquals(out.code, 0, out.stderr);
});
