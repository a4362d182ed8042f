/**
 * Issue 10, point 8: text from the network or from file names never reaches the terminal
 * raw. A server (tests/support/bad_sftpd.py `evil`) lists names and answers OPEN with
 * errors that carry terminal escapes, C1 and BiDi controls, newlines and U+2028 before
 * forged `error:` lines; a local backup directory holds archives whose names carry U+202E
 * and ESC. `sqlbk list`, `pull`, `status` and `verify` print them escaped (`\x1b`,
 * `\u202e`), and their `--json` output is escaped the same way while parsing back to the
 * exact names.
 */
import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { DENO_DIR, ROOT, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { startSshd } from "./support/sshd.ts";

const NAME = "app-2025-03-01T00-00-00Z-vacuum.bck.gz";
const SCRIPT = join(ROOT, "tests", "support", "bad_sftpd.py");

/** What a terminal acts on, newline aside (each output line is checked on its own). */
// deno-lint-ignore no-control-regex
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function assertClean(what: string, text: string): void {
  const m = RAW.exec(text);
  assert(m === null, `${what}: raw U+${m?.[0].charCodeAt(0).toString(16).padStart(4, "0")} in ${JSON.stringify(text)}`);
  const forged = text.split("\n").filter((l) => /^(error|warning): forged/.test(l));
  assertEquals(forged, [], `${what}: a forged line`);
}

function connection(s: { port: number; clientKey: string; knownHosts: string; sshConfig: string }): string[] {
  return ["--port", String(s.port), "-i", s.clientKey, "--known-hosts", s.knownHosts, "--ssh-config", s.sshConfig];
}

Deno.test("list, pull and status print a hostile server's names and error texts escaped, in text and --json", async () => {
  await using dir = await tempDir();
  const served = dir.join("served");
  await Deno.mkdir(served);
  await placeBackup(served, NAME, { rows: 200 });
  await using s = await startSshd({ sftpSubsystem: `/usr/bin/python3 ${SCRIPT} ${served} evil` });
  const env = { HOME: dir.path, SSH_AUTH_SOCK: "", DENO_DIR };
  const target = `${s.user}@127.0.0.1:${s.remoteDir}`;

  const listed = await sqlbk(["list", target, ...connection(s)], { env });
  assertEquals(listed.code, 0, listed.stderr);
  assertClean("list stdout", listed.stdout);
  assertClean("list stderr", listed.stderr);
  assertStringIncludes(listed.stdout, "rtl\\u202eppa");
  assertStringIncludes(listed.stdout, "esc\\x1b[2J\\x9b31m");
  assertStringIncludes(listed.stdout, "iso\\u2066x\\u2069\\u200f");

  const json = await sqlbk(["list", target, "--json", ...connection(s)], { env });
  assertEquals(json.code, 0, json.stderr);
  assertClean("list --json", json.stdout);
  const files = json.stdout.trim().split("\n").map((l) => JSON.parse(l).file as string);
  assert(files.includes("rtl\u202eppa-2025-04-01T00-00-00Z-online.bck.gz"), "JSON keeps the exact name");
  assert(files.includes("esc\x1b[2J\x9b31m-2025-04-01T00-00-00Z-online.bck.gz"), files.join(", "));

  // Every OPEN fails with the server's hostile text: the pull stops at one real error line,
  // which names the database (a hostile name too, with --db) escaped.
  for (const extra of [[], ["--json"], ["--db", "rtl\u202eppa"]]) {
    const pulled = await sqlbk(["pull", target, ...connection(s), "--to", dir.join("pulled"), ...extra], { env });
    assertEquals(pulled.code, 1, pulled.stderr);
    assertClean("pull stdout", pulled.stdout);
    assertClean("pull stderr", pulled.stderr);
    assertStringIncludes(
      pulled.stderr,
      "disk \\x1b]0;pwned\\x07on fire\\x0aerror: forged \\u202eline\\u2028error: forged again\\u061c",
    );
    if (extra[0] === "--db") assertStringIncludes(pulled.stderr, "rtl\\u202eppa");
    assertEquals(pulled.stderr.split("\n").filter((l) => l.startsWith("error:")).length, 1, pulled.stderr);
  }

  for (const extra of [[], ["--json"]]) {
    const status = await sqlbk(["status", target, ...connection(s), ...extra], { env });
    assertClean("status stdout", status.stdout);
    assertClean("status stderr", status.stderr);
    assertStringIncludes(status.stdout, "rtl\\u202eppa");
  }
});

Deno.test("list, status and verify print local file names with U+202E and ESC escaped", async () => {
  await using dir = await tempDir();
  const store = dir.join("store");
  await Deno.mkdir(store);
  const rtl = "rtl\u202eppa-2025-04-01T00-00-00Z-online.bck.gz";
  const esc = "esc\x1b]0;title\x07-2025-04-02T00-00-00Z-online.bck.gz";
  await placeBackup(store, rtl, { rows: 100 });
  await placeBackup(store, esc, { rows: 100 });

  for (
    const args of [["list", store], ["status", store, "--max-age", "1000000h"], [
      "verify",
      join(store, rtl),
      join(store, esc),
    ]]
  ) {
    for (const extra of [[], ["--json"]]) {
      const out = await sqlbk([...args, ...extra]);
      assertEquals(out.code, 0, `${args[0]} ${extra}: ${out.stderr}`);
      assertClean(`${args[0]} ${extra} stdout`, out.stdout);
      assertClean(`${args[0]} ${extra} stderr`, out.stderr);
      assertStringIncludes(out.stdout, "rtl\\u202eppa", `${args[0]} ${extra}`);
      if (extra.length) {
        const parsed = out.stdout.trim().split("\n").map((l) => JSON.stringify(JSON.parse(l)));
        assert(parsed.some((l) => l.includes(JSON.stringify(rtl).slice(1, -1))), "JSON keeps the exact name");
      } else if (args[0] !== "status") {
        assertStringIncludes(out.stdout, "esc\\x1b]0;title\\x07");
      }
    }
  }
  // A name from a broken archive reaches an error line escaped too.
  await Deno.writeFile(join(store, rtl), new TextEncoder().encode("not gzip"));
  const bad = await sqlbk(["verify", join(store, rtl)]);
  assertEquals(bad.code, 3, bad.stderr);
  assertClean("verify error", bad.stderr);
  assertStringIncludes(bad.stderr, "error: Backup");
  assertStringIncludes(bad.stderr, "rtl\\u202eppa");
});
