/**
 * Backup benchmark: `sqlbk backup` with each strategy against `sqlite3 .backup` + `gzip -6`
 * and `sqlite3 .backup` + `pigz -6`, on the same generated database in the same run; then
 * the commit latency of a writer during an online backup with default settings.
 *
 *   deno task bench backup [--size-mb 1024] [--writer-seconds 10]
 *
 * The database is generated once (text and index heavy, so it compresses like real data)
 * and kept in bench/.work/ for later runs.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWriter, type WriterStats } from "../tests/support/writer.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const WORK = join(ROOT, "bench/.work");
const PERMS = ["--allow-ffi", "--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys=hostname"];

interface Timed {
  name: string;
  wallS: number;
  maxRssMiB: number;
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
  return { name, wallS, maxRssMiB: rss, bytes: await output() };
}

/** Generates a text- and index-heavy WAL database of about `sizeMb` MiB with python3. */
async function generate(path: string, sizeMb: number): Promise<void> {
  const script = `
import random, sqlite3, string, sys
path, target = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
random.seed(42)
words = [''.join(random.choice(string.ascii_lowercase) for _ in range(random.randint(2, 10))) for _ in range(20000)]
tags = words[:300]
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT, author TEXT, tag TEXT, score INTEGER, created TEXT)")
db.execute("CREATE INDEX docs_title ON docs(title)")
db.execute("CREATE INDEX docs_tag_score ON docs(tag, score)")
db.execute("CREATE INDEX docs_author ON docs(author, created)")
import os
n = 0
while True:
    rows = []
    for _ in range(5000):
        n += 1
        rows.append((" ".join(random.choices(words, k=8)), " ".join(random.choices(words, k=random.randint(40, 160))),
                     random.choice(words) + " " + random.choice(words), random.choice(tags), random.randint(0, 10**6),
                     "2025-%02d-%02dT%02d:%02d:00Z" % (random.randint(1, 12), random.randint(1, 28), random.randint(0, 23), random.randint(0, 59))))
    db.executemany("INSERT INTO docs (title, body, author, tag, score, created) VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    if os.path.getsize(path) + os.path.getsize(path + "-wal") >= target:
        break
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print(n)
`;
  console.error(`generating a ~${sizeMb} MiB database at ${path} (once; kept for later runs)`);
  await sh("python3", ["-c", script, path, String(sizeMb)]);
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function sizeOfGz(dir: string): Promise<number> {
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".gz")) return (await Deno.stat(join(dir, e.name))).size;
  throw new Error(`no .gz in ${dir}`);
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
    await generate(src, sizeMb);
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
  results.push(
    await timed("sqlbk backup online (sleep 0s)", [
      ...sqlbk,
      "backup",
      src,
      "-q",
      "-s",
      "online",
      "--sleep-interval",
      "0s",
      "-d",
      join(run, "online"),
    ], () => sizeOfGz(join(run, "online"))),
  );
  results.push(
    await timed(
      "sqlbk backup vacuum",
      [...sqlbk, "backup", src, "-q", "-s", "vacuum", "-d", join(run, "vacuum")],
      () => sizeOfGz(join(run, "vacuum")),
    ),
  );
  for (const tool of ["gzip", "pigz"]) {
    // The standard pipeline: the sqlite3 CLI's online backup, then the compressor.
    const copy = join(run, `${tool}.db`);
    const script = `sqlite3 "$1" ".backup '$2'" && ${tool} -6 "$2"`;
    results.push(
      await timed(
        `sqlite3 .backup && ${tool} -6`,
        ["sh", "-c", script, "sh", src, copy],
        async () => (await Deno.stat(`${copy}.gz`)).size,
      ),
    );
  }
  const [, , gzipRun, pigzRun] = results;
  console.log("\n| pipeline | wall | vs sqlite3+gzip | vs sqlite3+pigz | compressed | vs gzip -6 size | peak RSS |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${r.wallS.toFixed(2)} s | ${ratio(r.wallS, gzipRun.wallS)} | ${ratio(r.wallS, pigzRun.wallS)} | ${
        mib(r.bytes)
      } | ${ratio(r.bytes, gzipRun.bytes)} | ${r.maxRssMiB.toFixed(0)} MiB |`,
    );
  }

  // Writer latency: the same writer alone, then during an online backup with default settings.
  const seconds = Number(values["writer-seconds"]);
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
  ], () => sizeOfGz(join(run, "defaults")));
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
