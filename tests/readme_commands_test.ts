/**
 * Review 2, section 3: the README's systemd unit "from source" runs with the permissions
 * and V8 flags `deno task sqlbk` uses, as the README says; `pull --chunk-size` documents
 * the minimum it enforces.
 */

import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { ROOT, sqlbk } from "./support/db.ts";

Deno.test("the README's from-source ExecStart has exactly the flags of deno task sqlbk", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks as Record<string, string>;
  const flags = (text: string) => text.split(/\s+/).filter((w) => w.startsWith("--")).sort();
  const task = flags(tasks.sqlbk.replace(/cli\/main\.ts.*/, ""));
  const at = readme.indexOf("From source instead of the binary, with the permissions `deno task sqlbk` uses");
  assert(at > 0, "the sentence is in the README");
  const block = /```ini\n([\s\S]*?)```/.exec(readme.slice(at))![1];
  const execStart = block.replace(/\\\n/g, " ");
  assertStringIncludes(execStart, "ExecStart=/usr/local/bin/deno run ");
  assertEquals(flags(execStart.replace(/cli\/main\.ts.*/s, "")), task);
});

Deno.test("pull --chunk-size: the minimum and maximum in the help are the ones enforced", async () => {
  const help = await sqlbk(["pull", "--help"]);
  assertStringIncludes(help.stdout, "--chunk-size N         bytes per SFTP read request, 4096 to 261120");
  for (
    const [value, message] of [["4095", "expected a whole number of at least 4096"], [
      "261121",
      "OpenSSH serves at most 261120 bytes per read",
    ]]
  ) {
    const out = await sqlbk(["pull", "backup@127.0.0.1:/srv", "--to", "/nonexistent-dir/p", "--chunk-size", value]);
    assertEquals(out.code, 2, out.stderr);
    assertStringIncludes(out.stderr, `error: Invalid --chunk-size "${value}": ${message}`);
  }
});
