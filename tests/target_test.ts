import { assertEquals } from "./support/assert.ts";
import { ConfigError } from "../src/errors.ts";
import { isRemoteTarget, parseTarget } from "../src/pull/target.ts";
import { parsePullTable } from "../src/pull/pull_config.ts";
import { chooseLatest } from "../src/pull/pull.ts";
import nodeAssert from "node:assert/strict";

Deno.test("parseTarget() reads scp-style and sftp:// targets", () => {
  assertEquals(parseTarget("backup@db1.example.com:/var/backups"), {
    host: "db1.example.com",
    user: "backup",
    remoteDir: "/var/backups",
  });
  assertEquals(parseTarget("db1:backups"), { host: "db1", user: undefined, remoteDir: "backups" });
  assertEquals(parseTarget("db1:"), { host: "db1", user: undefined, remoteDir: "." });
  assertEquals(parseTarget("[::1]:/srv"), { host: "::1", user: undefined, remoteDir: "/srv" });
  assertEquals(parseTarget("sftp://me@db1:2222/srv/backups"), {
    host: "db1",
    user: "me",
    port: 2222,
    remoteDir: "/srv/backups",
  });
  assertEquals(parseTarget("sftp://db1/~/backups"), {
    host: "db1",
    user: undefined,
    port: undefined,
    remoteDir: "backups",
  });
  assertEquals(parseTarget("sftp://[::1]:22/x%20y"), { host: "::1", user: undefined, port: 22, remoteDir: "/x y" });
});

Deno.test("parseTarget() rejects what is not a target with a usage error naming it", () => {
  for (
    const bad of ["db1", "/local/dir", "sftp://db1:99999/x", "sftp://db1:0/x", "sftp://", "sftp://h/x?y=1", "a@:/x"]
  ) {
    nodeAssert.throws(
      () => parseTarget(bad),
      (err: unknown) => err instanceof ConfigError && err.message.includes(bad),
    );
  }
  assertEquals(isRemoteTarget("db1:/x"), true);
  assertEquals(isRemoteTarget("sftp://db1/x"), true);
  assertEquals(isRemoteTarget("./dir"), false);
  assertEquals(isRemoteTarget("/abs/dir:x"), false);
});

Deno.test("parsePullTable() validates the [pull] table and names the bad key", () => {
  assertEquals(parsePullTable({ host: "db1", port: 2222, databases: ["app"], keep_last: 3 }), {
    host: "db1",
    port: 2222,
    user: undefined,
    identityFile: undefined,
    remoteDir: undefined,
    localDir: undefined,
    knownHosts: undefined,
    keepLast: 3,
    databases: ["app"],
    sshCommand: undefined,
    sshConfig: undefined,
    sshOptions: undefined,
  });
  assertEquals(
    parsePullTable({ ssh_command: "/opt/ssh", ssh_config: "/etc/sqlbk/ssh_config", ssh_options: ["ProxyJump=b"] }),
    {
      ...parsePullTable({}),
      sshCommand: "/opt/ssh",
      sshConfig: "/etc/sqlbk/ssh_config",
      sshOptions: ["ProxyJump=b"],
    },
  );
  const cases: [Record<string, unknown>, string][] = [
    [{ hots: "db1" }, `unknown key "hots" in [pull]; known keys: host, port`],
    [{ port: 70000 }, `invalid "port" in [pull] 70000`],
    [{ keep_last: -1 }, `invalid "keep_last"`],
    [{ databases: "app" }, `invalid "databases" in [pull] "app"`],
    [{ host: 5 }, `invalid "host" in [pull] 5`],
    [{ ssh_options: "ProxyJump=b" }, `invalid "ssh_options" in [pull] "ProxyJump=b": expected an array of strings`],
  ];
  for (const [raw, msg] of cases) {
    nodeAssert.throws(
      () => parsePullTable(raw, "pull.toml"),
      (err: unknown) =>
        err instanceof ConfigError && err.message.startsWith("pull.toml: ") && err.message.includes(msg),
    );
  }
});

Deno.test("chooseLatest() picks by the timestamp in the name, never links, temp or foreign files", () => {
  const e = (name: string, isFile = true) => ({ name, size: 1, mtime: 0, isFile });
  const latest = chooseLatest([
    e("app-2025-01-02T00-00-00Z-online.bck.gz"),
    e("app-20250103T000000Z-vacuum.bck.gz"),
    e("app-2025-01-04T00-00-00Z-online.bck.gz.tmp"),
    e("app-2025-01-05T00-00-00Z-online.bck.gz.sha256"),
    e("app-2025-01-06T00-00-00Z-online.bck.gz", false),
    e("zzz-latest.txt"),
    e("auth-20240101T000000Z.db"),
  ]);
  assertEquals([...latest.keys()].sort(), ["app", "auth"]);
  assertEquals(latest.get("app")?.name, "app-20250103T000000Z-vacuum.bck.gz");
});

Deno.test("the blueprint's commented [pull] table validates once uncommented, and the blueprint still parses", async () => {
  const { blueprint } = await import("../src/blueprint.ts");
  const { parseConfig } = await import("../src/config.ts");
  const text = blueprint();
  parseConfig(text);
  const table = text.slice(text.indexOf("# [pull]")).split("\n")
    .filter((l) => l.startsWith("# ") && !l.startsWith("# #")).map((l) => l.slice(2)).join("\n");
  const cfg = parseConfig(table, { requireSource: false });
  assertEquals(parsePullTable(cfg.pull).host, "db1.example.com");
  assertEquals(parsePullTable(cfg.pull).databases, ["app", "auth"]);
});
