import { assertEquals } from "./support/assert.ts";
import { resolveSshConfig } from "../src/pull/ssh_config.ts";
import { tempDir } from "./support/db.ts";

const CONFIG = `# a comment
Host backup backup-alt
  HostName 10.0.0.5
  User puller
  Port 2222
  IdentityFile ~/.ssh/backup_key

Host *.example.com !bad.example.com
  User web
  IdentityFile %d/.ssh/id_%h

Match host nothing
  User never

Host *
  User=fallback
  Port 22
  IdentityFile "~/.ssh/id_ed25519"
`;

Deno.test("resolveSshConfig() applies Host blocks as OpenSSH does: first value wins, IdentityFile adds up", () => {
  const home = "/home/me";
  const backup = resolveSshConfig(CONFIG, "backup", { home, localUser: "me" });
  assertEquals(backup, {
    hostName: "10.0.0.5",
    user: "puller",
    port: 2222,
    identityFiles: ["/home/me/.ssh/backup_key", "/home/me/.ssh/id_ed25519"],
  });
  const web = resolveSshConfig(CONFIG, "www.example.com", { home, localUser: "me" });
  assertEquals(web, {
    hostName: "www.example.com",
    user: "web",
    port: 22,
    identityFiles: ["/home/me/.ssh/id_www.example.com", "/home/me/.ssh/id_ed25519"],
  });
  const bad = resolveSshConfig(CONFIG, "bad.example.com", { home, localUser: "me" });
  assertEquals(bad.user, "fallback");
  const none = resolveSshConfig("", "plain.host", { home });
  assertEquals(none, { hostName: "plain.host", user: undefined, port: undefined, identityFiles: [] });
});

Deno.test("resolveSshConfig() reads Include files in place: globs, ~/.ssh-relative paths, inside a Host block", async () => {
  await using dir = await tempDir();
  const home = dir.path;
  await Deno.mkdir(dir.join(".ssh/config.d"), { recursive: true });
  await Deno.writeTextFile(dir.join(".ssh/config.d/10-db"), "Host db\n  HostName 10.1.1.1\n  Port 2200\n");
  await Deno.writeTextFile(dir.join(".ssh/config.d/20-web"), "Host web\n  HostName 10.2.2.2\n");
  await Deno.writeTextFile(dir.join(".ssh/config.d/.hidden"), "Host db\n  HostName 6.6.6.6\n");
  await Deno.writeTextFile(dir.join(".ssh/keys.conf"), "IdentityFile ~/.ssh/special\n");
  const config = `Include config.d/*
Host db
  User dba
  Include keys.conf
  Port 9999
Include ${dir.join(".ssh/missing")} ~/.ssh/none-*
Host *
  User everyone
`;
  const db = resolveSshConfig(config, "db", { home, localUser: "me" });
  // The included Host block came first, so its Port wins; the Include inside "Host db"
  // applies to db only, and the block goes on after it (User dba).
  assertEquals(db, { hostName: "10.1.1.1", user: "dba", port: 2200, identityFiles: [dir.join(".ssh/special")] });
  const web = resolveSshConfig(config, "web", { home, localUser: "me" });
  assertEquals(web, { hostName: "10.2.2.2", user: "everyone", port: undefined, identityFiles: [] });
  const off = resolveSshConfig(config, "web", { home, localUser: "me", followIncludes: false });
  assertEquals(off.hostName, "web");
});
