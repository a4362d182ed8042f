import { assertEquals } from "./support/assert.ts";
import { resolveSshConfig } from "../src/pull/ssh_config.ts";

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
