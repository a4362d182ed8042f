/**
 * Benchmarks: `deno task bench [backup|pull] [options]`. With no name, runs every benchmark.
 * They print numbers and ratios against the standard tools; they assert nothing.
 *
 * @module
 */

import { benchBackup } from "./backup_bench.ts";

const BENCHES: Record<string, (args: string[]) => Promise<void>> = {
  backup: benchBackup,
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
