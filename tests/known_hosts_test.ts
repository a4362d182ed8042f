import { assert, assertEquals } from "./support/assert.ts";
import { Buffer } from "node:buffer";
import { run, tempDir } from "./support/db.ts";
import { keygen } from "./support/sshd.ts";
import {
  addKnownHost,
  checkHostKey,
  fingerprint,
  hostKeyName,
  hostPatternMatches,
  keyTypeOf,
  parseKnownHosts,
  readKnownHosts,
} from "../src/pull/known_hosts.ts";

async function key(dir: string, name: string, type = "ed25519"): Promise<{ line: string; blob: Uint8Array }> {
  const path = await keygen(`${dir}/${name}`, type);
  const line = (await Deno.readTextFile(`${path}.pub`)).trim().split(" ").slice(0, 2).join(" ");
  return { line, blob: new Uint8Array(Buffer.from(line.split(" ")[1], "base64")) };
}

Deno.test("fingerprint() prints a key's SHA256 fingerprint exactly as ssh-keygen -l does", async () => {
  await using dir = await tempDir();
  for (const type of ["ed25519", "ecdsa", "rsa"]) {
    const k = await key(dir.path, `k_${type}`, type);
    const out = await run("ssh-keygen", ["-lf", `${dir.path}/k_${type}.pub`]);
    assertEquals(fingerprint(k.blob), out.stdout.split(" ")[1]);
    assertEquals(keyTypeOf(k.blob), k.line.split(" ")[0]);
  }
});

Deno.test("checkHostKey() matches plain, [host]:port and wildcard entries, and spots changed and revoked keys", async () => {
  await using dir = await tempDir();
  const a = await key(dir.path, "a");
  const b = await key(dir.path, "b");
  const text = `# comment

db1.example.com,10.0.0.5 ${a.line}
[db2.example.com]:2222 ${a.line}
*.corp.example.com,!evil.corp.example.com ${a.line}
@revoked * ${b.line.replace(/.$/, "")}x
malformed-line
`;
  const entries = parseKnownHosts(text);
  assertEquals(entries.length, 4);
  assertEquals(checkHostKey(entries, a.blob, { host: "db1.example.com" }).status, "known");
  assertEquals(checkHostKey(entries, a.blob, { host: "10.0.0.5", port: 22 }).status, "known");
  assertEquals(checkHostKey(entries, a.blob, { host: "db2.example.com", port: 2222 }).status, "known");
  assertEquals(checkHostKey(entries, a.blob, { host: "db2.example.com" }).status, "unknown");
  assertEquals(checkHostKey(entries, a.blob, { host: "x.corp.example.com" }).status, "known");
  assertEquals(checkHostKey(entries, a.blob, { host: "evil.corp.example.com" }).status, "unknown");
  const changed = checkHostKey(entries, b.blob, { host: "db1.example.com" });
  assertEquals(changed.status, "changed");
  assert(changed.status === "changed" && changed.entry.line === 3);
  const revoked = parseKnownHosts(`@revoked * ${b.line}\ndb1.example.com ${b.line}\n`);
  assertEquals(checkHostKey(revoked, b.blob, { host: "db1.example.com" }).status, "revoked");
});

Deno.test("checkHostKey() accepts entries hashed by ssh-keygen -H", async () => {
  await using dir = await tempDir();
  const a = await key(dir.path, "a");
  const file = dir.join("known_hosts");
  await Deno.writeTextFile(file, `backup.example.com ${a.line}\n[127.0.0.1]:2022 ${a.line}\n`);
  assertEquals((await run("ssh-keygen", ["-H", "-f", file])).code, 0);
  const entries = await readKnownHosts(file);
  assert(entries.every((e) => e.hosts.startsWith("|1|")));
  assertEquals(checkHostKey(entries, a.blob, { host: "backup.example.com" }).status, "known");
  assertEquals(checkHostKey(entries, a.blob, { host: "127.0.0.1", port: 2022 }).status, "known");
  assertEquals(checkHostKey(entries, a.blob, { host: "127.0.0.1" }).status, "unknown");
  assert(!hostPatternMatches(entries[0].hosts, "other.example.com"));
});

Deno.test("addKnownHost() writes a line OpenSSH finds, creating the file", async () => {
  await using dir = await tempDir();
  const a = await key(dir.path, "a");
  const file = dir.join("sub", "known_hosts");
  await addKnownHost(file, a.blob, { host: "127.0.0.1", port: 2222 });
  await addKnownHost(file, a.blob, { host: "db1" });
  assertEquals(await Deno.readTextFile(file), `[127.0.0.1]:2222 ${a.line}\ndb1 ${a.line}\n`);
  assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
  assertEquals((await run("ssh-keygen", ["-F", "[127.0.0.1]:2222", "-f", file])).code, 0);
  assertEquals(hostKeyName("h", 22), "h");
  assertEquals(await readKnownHosts(dir.join("missing")), []);
});
