import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { sshArgs, sshBinary } from "../src/pull/ssh_args.ts";
import { ConfigError } from "../src/errors.ts";
import { run } from "./support/db.ts";

/** The `-o` settings of an argument list. */
function settings(args: string[]): string[] {
  return args.flatMap((a, i) => (args[i - 1] === "-o" ? [a] : []));
}

Deno.test("sshArgs() maps the flags to ssh options and ends with -s -- host sftp", () => {
  const args = sshArgs({
    host: "db1",
    port: 2222,
    user: "backup",
    identityFiles: ["/k/one", "/k/two"],
    knownHostsFile: "/k/known_hosts",
    timeoutMs: 9000,
    sshConfigPath: "/k/config",
    sshOptions: ["ProxyJump=bastion"],
    agentSocket: null,
    batchMode: true,
  });
  assertEquals(args.slice(-4), ["-s", "--", "db1", "sftp"]);
  const flag = (f: string) => args.flatMap((a, i) => (args[i - 1] === f ? [a] : []));
  assertEquals(flag("-p"), ["2222"]);
  assertEquals(flag("-l"), ["backup"]);
  assertEquals(flag("-i"), ["/k/one", "/k/two"]);
  assertEquals(flag("-F"), ["/k/config"]);
  const o = settings(args);
  for (
    const s of [
      "StrictHostKeyChecking=yes",
      "UserKnownHostsFile=/k/known_hosts",
      "IdentityAgent=none",
      "BatchMode=yes",
      "ProxyJump=bastion",
      "ConnectTimeout=9",
      "ServerAliveInterval=3",
      "ServerAliveCountMax=3",
    ]
  ) assert(o.includes(s), `${s} in ${o.join(" ")}`);
  // sqlbk's host-key setting comes before the caller's options (OpenSSH keeps the first).
  assert(o.indexOf("StrictHostKeyChecking=yes") < o.indexOf("ProxyJump=bastion"));
});

Deno.test("sshArgs() host-key modes: accept-new, and insecure records nothing", () => {
  assert(settings(sshArgs({ host: "h", acceptNew: true })).includes("StrictHostKeyChecking=accept-new"));
  const insecure = settings(sshArgs({ host: "h", insecureSkipHostKeyCheck: true, knownHostsFile: "/k" }));
  assert(insecure.includes("StrictHostKeyChecking=no"));
  assert(insecure.includes("UserKnownHostsFile=/dev/null"));
  assert(!insecure.includes("UserKnownHostsFile=/k"));
  assert(!settings(sshArgs({ host: "h", batchMode: false })).includes("BatchMode=yes"));
});

Deno.test("sshArgs() refuses a host or user that ssh would read as an option, and ssh_options that change the host-key policy", () => {
  for (const host of ["-oProxyCommand=touch /tmp/x", "", "a b"]) {
    assertThrows(() => sshArgs({ host }), ConfigError, "Invalid host");
  }
  assertThrows(() => sshArgs({ host: "h", user: "-F/etc/passwd" }), ConfigError, "Invalid user");
  assertThrows(
    () => sshArgs({ host: "h", sshOptions: ["StrictHostKeyChecking=no"] }),
    ConfigError,
    "sqlbk sets StrictHostKeyChecking itself",
  );
  assertThrows(() => sshArgs({ host: "h", sshOptions: ["justaword"] }), ConfigError, "expected Keyword=value");
});

Deno.test("the real ssh accepts every option sshArgs() builds (ssh -G parses them without connecting)", async () => {
  const args = sshArgs({
    host: "db1.example.com",
    port: 2222,
    user: "backup",
    identityFiles: ["/k/one"],
    knownHostsFile: "/k/known_hosts",
    acceptNew: true,
    sshConfigPath: "/dev/null",
    sshOptions: ["Ciphers=aes128-ctr", "ProxyJump=bastion.example.com"],
    agentSocket: null,
    batchMode: true,
  });
  // -G prints the configuration ssh would use; drop the subsystem request.
  const out = await run(sshBinary(), ["-G", ...args.slice(0, -4).filter((a) => a !== "-v"), "db1.example.com"]);
  assertEquals(out.code, 0, out.stderr);
  for (
    const line of [
      "port 2222",
      "user backup",
      "stricthostkeychecking accept-new",
      "batchmode yes",
      "ciphers aes128-ctr",
      "proxyjump bastion.example.com",
      "userknownhostsfile /k/known_hosts",
    ]
  ) assert(out.stdout.split("\n").includes(line), `ssh -G has "${line}"`);
});
