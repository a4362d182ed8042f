/**
 * Benchmarks: `deno task bench [backup|pull] [options]`. With no name, runs every benchmark.
 * They print numbers and ratios against the standard tools; they assert nothing.
 *
 * - `backup`: `sqlbk backup` (both strategies) against `sqlite3 .backup` + `gzip -6` / `pigz -6`
 *   on a generated 1 GiB database, and a writer's commit latency during an online backup.
 * - `pull`: `sqlbk pull` against OpenSSH `sftp` and `scp` from a private sshd on loopback
 *   (bench/pull_bench.ts), then the raw download alone per cipher (bench/pull_download_probe.ts).
 * - `verify`: the parallel full check against one `PRAGMA integrity_check` and one
 *   `quick_check` on the same file (bench/verify_bench.ts).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { benchBackup } from "./backup_bench.ts";

async function script(name: string, args: string[]): Promise<void> {
  const path = fileURLToPath(new URL(name, import.meta.url));
  const status = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", path, ...args] }).spawn().status;
  if (!status.success) throw new Error(`${name} failed with exit code ${status.code}`);
}

const BENCHES: Record<string, (args: string[]) => Promise<void>> = {
  backup: benchBackup,
  verify: (args) => script("./verify_bench.ts", args), // -A: it reads /proc for CPU time and load
  pull: async (args) => {
    await script("./pull_bench.ts", args);
    await script("./pull_download_probe.ts", []);
  },
};

const [name, ...rest] = Deno.args;
if (name !== undefined && !(name in BENCHES)) {
  console.error(`error: unknown benchmark "${name}" (benchmarks: ${Object.keys(BENCHES).join(", ")})`);
  Deno.exitCode = 2;
} else {
  for (const [key, bench] of Object.entries(BENCHES)) {
    if (name !== undefined && key !== name) continue;
    console.log(`\n## ${key}\n`);
    await bench(name === undefined ? [] : rest);
  }
}
