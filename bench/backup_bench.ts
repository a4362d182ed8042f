/**
 * Backup benchmark: `sqlbk backup` with each strategy, gzip and zstd, against
 * `sqlite3 .backup` alone (the copy speed limit), `sqlite3 .backup` + `gzip -6`,
 * + `pigz -6` and + `zstd -T0`, on the same generated database in the same run, with each
 * row's CPU time (user + system, children included). Two rows show where the floor is: the
 * zstd backup with `--check none`, and `sqlite3 .backup` followed by `PRAGMA quick_check`
 * of the copy (what any backup checked before publishing costs at least); then the
 * commit latency of a writer during an online backup with default settings
 * (`--writer-seconds 0` skips that part).
 *
 *   deno task bench backup [--size-mb 1024] [--writer-seconds 10]
 *
 * The database (several tables with text and indexes, compressing about 3x: see
 * bench/_data.ts) is generated once, switched to WAL, and kept in bench/.work/.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWriter, type WriterStats } from "../tests/support/writer.ts";
import { makeAppDatabase } from "./_data.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const WORK = join(ROOT, "bench/.work");
const PERMS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys=hostname,statfs",
];

interface Timed {
  name: string;
  wallS: number;
  maxRssMiB: number;
  /** User + system CPU seconds of the process and its children. */
  cpuS: number;
  bytes: number;
}

async function sh(cmd: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: options.cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Runs a command under /usr/bin/time -v; returns wall seconds and peak RSS. */
async function timed(name: string, argv: string[], output: () => Promise<number>): Promise<Timed> {
  const out = await new Deno.Command("/usr/bin/time", { args: ["-v", ...argv], stdout: "piped", stderr: "piped" })
    .output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${name} failed:\n${err}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(err)!;
  const wallS = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(err)![1]) / 1024;
  const cpuS = Number(/User time \(seconds\): ([\d.]+)/.exec(err)![1]) +
    Number(/System time \(seconds\): ([\d.]+)/.exec(err)![1]);
  return { name, wallS, maxRssMiB: rss, cpuS, bytes: await output() };
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function sizeOfArchive(dir: string): Promise<number> {
  for await (const e of Deno.readDir(dir)) {
    if (/\.bck\.(gz|zst)$/.test(e.name)) return (await Deno.stat(join(dir, e.name))).size;
  }
  throw new Error(`no archive in ${dir}`);
}

/** Runs the backup benchmark and prints a table. */
export async function benchBackup(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { "size-mb": { type: "string", default: "1024" }, "writer-seconds": { type: "string", default: "10" } },
  });
  const sizeMb = Number(values["size-mb"]);
  await Deno.mkdir(WORK, { recursive: true });
  const src = join(WORK, `bench-${sizeMb}.db`);
  try {
    await Deno.stat(src);
  } catch {
    await makeAppDatabase(`${src}.gen`, sizeMb, "several");
    await sh("sqlite3", [`${src}.gen`, "PRAGMA journal_mode=WAL;"]);
    await Deno.rename(`${src}.gen`, src);
  }
  const srcBytes = (await Deno.stat(src)).size;
  const run = join(WORK, "run");
  await Deno.remove(run, { recursive: true }).catch(() => {});
  await Deno.mkdir(run);
  const sqlbk = [Deno.execPath(), "run", "--quiet", ...PERMS, join(ROOT, "cli/main.ts")];
  const cores = navigator.hardwareConcurrency;
  console.log(
    `source: ${src} (${mib(srcBytes)}), ${cores} cores, ${(await sh("sqlite3", ["--version"])).split(" ")[0]}`,
  );

  const results: Timed[] = [];
  const sqlbkRun = (name: string, dir: string, flags: string[]) =>
    timed(name, [...sqlbk, "backup", src, "-q", "-d", join(run, dir), ...flags], () => sizeOfArchive(join(run, dir)));
  const online = ["-s", "online", "--sleep-interval", "0s"];
  const zstd = ["--compression", "zstd"];
  results.push(await sqlbkRun("sqlbk backup online (sleep 0s)", "online", online));
  results.push(await sqlbkRun("sqlbk backup vacuum", "vacuum", ["-s", "vacuum"]));
  results.push(await sqlbkRun("sqlbk backup online (sleep 0s), zstd", "online-zstd", [...online, ...zstd]));
  results.push(await sqlbkRun("sqlbk backup vacuum, zstd", "vacuum-zstd", ["-s", "vacuum", ...zstd]));
  // Without the snapshot check (check = "none"): what the copy and compression alone cost.
  results.push(
    await sqlbkRun("sqlbk backup online (sleep 0s), zstd, --check none", "online-zstd-nocheck", [
      ...online,
      ...zstd,
      "--check",
      "none",
    ]),
  );
  const copyOnly = join(run, "copy.db");
  results.push(
    await timed(
      "sqlite3 .backup alone",
      ["sh", "-c", `sqlite3 "$1" ".backup '$2'"`, "sh", src, copyOnly],
      async () => (await Deno.stat(copyOnly)).size,
    ),
  );
  await Deno.remove(copyOnly);
  // The floor of any backup that is checked before it is published (DESIGN.md rule 11):
  // the copy, then quick_check of the copy, both single-threaded in SQLite.
  results.push(
    await timed(
      "sqlite3 .backup && quick_check",
      ["sh", "-c", `sqlite3 "$1" ".backup '$2'" && sqlite3 "$2" "PRAGMA quick_check" >/dev/null`, "sh", src, copyOnly],
      async () => (await Deno.stat(copyOnly)).size,
    ),
  );
  await Deno.remove(copyOnly);
  for (
    const [tool, flags, ext] of [["gzip", "-6", "gz"], ["pigz", "-6", "gz"], ["zstd", "-T0 -q", "zst"], [
      "zstd",
      "-T0 -1 -q",
      "zst",
    ]]
  ) {
    // The standard pipeline: the sqlite3 CLI's online backup, then the compressor.
    const copy = join(run, `${tool}${flags.replace(/[^0-9]/g, "")}.db`);
    const script = `sqlite3 "$1" ".backup '$2'" && ${tool} ${flags} "$2"${tool === "zstd" ? ` && rm "$2"` : ""}`;
    results.push(
      await timed(
        `sqlite3 .backup && ${tool} ${flags.replace(" -q", "")}`,
        ["sh", "-c", script, "sh", src, copy],
        async () => (await Deno.stat(`${copy}.${ext}`)).size,
      ),
    );
  }
  const gzipRun = results.find((r) => r.name.endsWith("gzip -6"))!;
  const pigzRun = results.find((r) => r.name.endsWith("pigz -6"))!;
  const copyRun = results.find((r) => r.name === "sqlite3 .backup alone")!;
  console.log(
    "\n| pipeline | wall | CPU | vs sqlite3 .backup | vs sqlite3+gzip | vs sqlite3+pigz | output | vs gzip -6 size | peak RSS |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${r.wallS.toFixed(2)} s | ${r.cpuS.toFixed(2)} s | ${ratio(r.wallS, copyRun.wallS)} | ${
        ratio(r.wallS, gzipRun.wallS)
      } | ${ratio(r.wallS, pigzRun.wallS)} | ${mib(r.bytes)} | ${ratio(r.bytes, gzipRun.bytes)} | ${
        r.maxRssMiB.toFixed(0)
      } MiB |`,
    );
  }

  // Writer latency: the same writer alone, then during an online backup with default settings.
  const seconds = Number(values["writer-seconds"]);
  if (seconds <= 0) {
    await Deno.remove(run, { recursive: true }).catch(() => {});
    return;
  }
  const latencyDb = join(run, "latency.db");
  await sh("cp", [src, latencyDb]);
  const alone = await startWriter(latencyDb, { intervalMs: 5 });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const idle: WriterStats = await alone.stop();
  const during = await startWriter(latencyDb, { intervalMs: 5 });
  const backup = await timed("sqlbk backup online (defaults)", [
    ...sqlbk,
    "backup",
    latencyDb,
    "-q",
    "-d",
    join(run, "defaults"),
  ], () => sizeOfArchive(join(run, "defaults")));
  const busy: WriterStats = await during.stop();
  console.log(`\nwriter committing a small insert every 5 ms (python3, WAL):`);
  console.log("| condition | commits | p50 | p99 | max |");
  console.log("|---|---|---|---|---|");
  console.log(
    `| no backup (${seconds} s) | ${idle.commits} | ${idle.p50.toFixed(2)} ms | ${idle.p99.toFixed(2)} ms | ${
      idle.max.toFixed(2)
    } ms |`,
  );
  console.log(
    `| during online backup, defaults (${backup.wallS.toFixed(1)} s) | ${busy.commits} | ${busy.p50.toFixed(2)} ms | ${
      busy.p99.toFixed(2)
    } ms | ${busy.max.toFixed(2)} ms |`,
  );
  await Deno.remove(run, { recursive: true }).catch(() => {});
}

if (import.meta.main) await benchBackup(Deno.args);
