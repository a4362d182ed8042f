/**
 * Verification benchmark: the parallel full check (`checkDatabase`: quick_check plus
 * integrity_check(TABLE) per table on several connections) against one
 * `PRAGMA integrity_check` and one `PRAGMA quick_check`, on the same file, through the
 * same SQLite binding, with `--jobs 1`, `--jobs 2` and the cores. Two databases: several
 * tables of comparable size, and one dominated by a single table.
 *
 *   deno task bench verify [--mib 256] [--runs 1]
 *
 * The databases are generated once and kept in bench/.work/. The file is read once
 * before timing, so every contender starts from a warm page cache.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { makeAppDatabase, type Shape } from "./_data.ts";
import { checkDatabase } from "../src/integrity.ts";
import { integrityCheck } from "../src/verify.ts";
import { Database } from "../src/sqlite/database.ts";

const WORK = join(fileURLToPath(new URL("../", import.meta.url)), "bench/.work");

async function quickCheck(path: string): Promise<boolean> {
  const db = new Database(path, { mode: "readonly" });
  try {
    const rows = await db.queryAsync("PRAGMA quick_check");
    return rows.length === 1 && Object.values(rows[0])[0] === "ok";
  } finally {
    db.close();
  }
}

/** This process's CPU time (user + system) in ms, from /proc (Linux); NaN elsewhere. */
function cpuMs(): number {
  try {
    const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

interface Timing {
  ms: number;
  cpu: number;
}

/** One timed run of `fn`: wall and CPU time (CPU / wall = cores kept busy). */
async function timeOnce(fn: () => Promise<boolean>): Promise<Timing> {
  const t0 = performance.now();
  const c0 = cpuMs();
  if (!(await fn())) throw new Error("the check failed on a sound database");
  return { ms: performance.now() - t0, cpu: cpuMs() - c0 };
}

/**
 * `runs` rounds of every contender, in an order rotated every round (so a drift of the
 * machine's speed does not favour whoever runs first); per contender the best round and
 * the median wall time.
 */
async function interleaved(
  runs: number,
  contenders: [string, () => Promise<boolean>][],
): Promise<{ name: string; best: Timing; medianMs: number }[]> {
  const times: Timing[][] = contenders.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + r) % contenders.length;
      times[i].push(await timeOnce(contenders[i][1]));
    }
  }
  return contenders.map(([name], i) => {
    const sorted = [...times[i]].sort((a, b) => a.ms - b.ms);
    return { name, best: sorted[0], medianMs: sorted[Math.floor((sorted.length - 1) / 2)].ms };
  });
}

/** Runs the verification benchmark and prints a table per database. */
export async function benchVerify(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { mib: { type: "string", default: "256" }, runs: { type: "string", default: "1" } },
  });
  const mib = Number(values.mib);
  const runs = Number(values.runs);
  const cores = navigator.hardwareConcurrency;
  await Deno.mkdir(WORK, { recursive: true });
  for (const shape of ["several", "one"] as Shape[]) {
    const path = join(WORK, `app-${shape}-${mib}.db`);
    await makeAppDatabase(path, mib, shape);
    await Deno.readFile(path); // warm the page cache
    const bytes = (await Deno.stat(path)).size;
    const load = Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
    const results = await interleaved(runs, [
      ["PRAGMA integrity_check (one connection)", async () => (await integrityCheck(path)).ok],
      ["PRAGMA quick_check", () => quickCheck(path)],
      ...[...new Set([1, 2, cores])].map((jobs) =>
        [`checkDatabase full, --jobs ${jobs}`, async () => (await checkDatabase(path, { jobs })).ok] as [
          string,
          () => Promise<boolean>,
        ]
      ),
    ]);
    const single = results[0];
    const what = shape === "several" ? "several tables of comparable size" : "one table dominates";
    console.log(
      `\n${what}: ${path} (${
        (bytes / 1048576).toFixed(0)
      } MiB, ${cores} cores, ${runs} rounds in rotated order, load average ${load.toFixed(2)} before)\n`,
    );
    console.log("| check | time | median | vs one integrity_check (median) | MB/s | CPU time | cores busy |");
    console.log("|---|---|---|---|---|---|---|");
    for (const { name, best: { ms, cpu }, medianMs } of results) {
      console.log(
        `| ${name} | ${(ms / 1000).toFixed(2)} s | ${(medianMs / 1000).toFixed(2)} s | ${
          (medianMs / single.medianMs).toFixed(2)
        }x | ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} | ${(cpu / 1000).toFixed(2)} s | ${(cpu / ms).toFixed(2)} |`,
      );
    }
  }
}

if (import.meta.main) await benchVerify(Deno.args);
