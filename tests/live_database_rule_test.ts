/**
 * DESIGN.md rule 10: a live database (and its -wal, -shm, -journal) is touched only
 * through SQLite connections of our one binding. POSIX drops every lock a process holds
 * on a file when ANY descriptor of it closes, so one header read with `Deno.open`
 * corrupted an app's database (issue 8). This test scans src/ and cli/ for file APIs
 * that open a path and fails when one appears where a live database path can reach it.
 */

import { join, relative } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { ROOT } from "./support/db.ts";

/** Calls that open (or read, write, copy, truncate) a path as a file. */
const _OPENERS =
  /\b(Deno\.(open|openSync|readFile|readFileSync|readTextFile|readTextFileSync|writeFile|writeFileSync|writeTextFile|writeTextFileSync|copyFile|copyFileSync|truncate|truncateSync|create|createSync)|fsyncFile|sha256File|gzipFile|gunzipFile|zstdFile|compressFile|decompressFile)\s*\(|from\s+["']node:fs(\/promises)?["']/;

/**
 * Files that hold the path of a live database (the source, the job queue's database, a
 * restore target). Every opener in them must carry a `rule 10:` comment on the same or
 * the previous line saying why the path it opens can never be a live database.
 */
const _HOLDS_LIVE_PATHS = [
  "src/job.ts",
  "src/worker.ts",
  "src/queue.ts",
  "src/app_db.ts",
  "src/app_config.ts",
  "src/restore.ts",
  "src/timers.ts",
  "src/sleep.ts",
  "cli/commands/run.ts",
  "cli/commands/backup.ts",
  "cli/commands/insert_job.ts",
  "cli/commands/config_put.ts",
  "cli/commands/restore.ts",
];
const _HOLDS_LIVE_DIRS = ["src/strategies/", "src/sqlite/"];

/**
 * Files allowed to open paths freely, and why no live database reaches them. A new file
 * that opens paths must be added here (or marked call by call) after checking the same.
 */
const _ALLOWED: Record<string, string> = {
  "src/fs.ts": "helpers; callers pass temp files, archives, sidecars and directories",
  "src/archive.ts": "the archive temp file and the backup dir's lock file",
  "src/codecs/": "compresses a finished snapshot (no connection left open), decompresses archives into new temp files",
  "src/hash.ts": "hashes archives and verification copies",
  "src/verify.ts": "archives, sidecars and verification copies",
  "src/verified_marker.ts": "the checksum file a pull writes beside a copy it verified",
  "src/config.ts": "the TOML config file",
  "src/retention.ts": "archives and sidecars",
  "src/pull/": "downloads, sidecars, the pull lock, ssh files: all on the pull host",
  "src/monitor/locked_write.ts": "the metrics textfile and its lock file",
  "src/monitor/report.ts": "the metrics textfile",
  "cli/": "config files, key files and output files named on the command line",
};

/** Lines of `text` that open a path without leave: `[line number, text]`. */
export function violations(file: string, text: string): [number, string][] {
  const strict = _HOLDS_LIVE_PATHS.includes(file) || _HOLDS_LIVE_DIRS.some((d) => file.startsWith(d));
  const allowed = !strict && Object.keys(_ALLOWED).some((k) => k.endsWith("/") ? file.startsWith(k) : file === k);
  if (allowed) return [];
  const lines = text.split("\n");
  const out: [number, string][] = [];
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "");
    if (/^\s*\*/.test(line) || !_OPENERS.test(code)) return; // doc comments show examples
    const marked = /rule 10:/.test(line) || (i > 0 && /rule 10:/.test(lines[i - 1]));
    if (!marked) out.push([i + 1, line.trim()]);
  });
  return out;
}

async function* _sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* _sources(path);
    else if (entry.isFile && entry.name.endsWith(".ts")) yield path;
  }
}

Deno.test("no file API opens a path that can be a live database (DESIGN.md rule 10)", async () => {
  const found: string[] = [];
  let scanned = 0;
  for (const top of ["src", "cli"]) {
    for await (const path of _sources(join(ROOT, top))) {
      scanned++;
      const file = relative(ROOT, path);
      for (const [n, line] of violations(file, await Deno.readTextFile(path))) found.push(`${file}:${n}: ${line}`);
    }
  }
  assert(scanned > 30, `scanned only ${scanned} files`);
  assertEquals(
    found,
    [],
    `file APIs where a live database path can reach them (use SQLite or stat; see DESIGN.md rule 10):\n${
      found.join("\n")
    }`,
  );
});

Deno.test("the rule 10 scan flags the header read that corrupted the app's database", () => {
  const old = `  if (info.size > 0) {
    const header = new Uint8Array(16);
    const file = await Deno.open(cfg.sourcePath, { read: true });`;
  assertEquals(violations("src/job.ts", old).length, 1);
  assertEquals(violations("src/strategies/online.ts", `const b = await Deno.readFile(sourcePath);`).length, 1);
  assertEquals(violations("src/newfile.ts", `import { openSync } from "node:fs";`).length, 1);
  assertEquals(violations("src/job.ts", `// rule 10: an archive, never the source\nawait sha256File(p);`).length, 0);
  assertEquals(violations("src/verify.ts", `await Deno.open(archive);`).length, 0);
});
