/**
 * Test support: temp directories, real database files made by the real `sqlite3` tool,
 * and running the `sqlbk` CLI as a subprocess.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A temp directory removed when disposed: `await using dir = await tempDir();`. */
export interface TempDir extends AsyncDisposable {
  path: string;
  join(...parts: string[]): string;
}

/** Makes a fresh temp directory for one test. */
export async function tempDir(prefix = "sqlbk-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    join: (...parts: string[]) => join(path, ...parts),
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Output of a finished subprocess. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program and collects its output. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<Output> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

/** Runs SQL through the system `sqlite3` tool and returns its stdout; throws on failure. */
export async function sqlite3(dbPath: string, sql: string): Promise<string> {
  // A busy timeout, as apps set: the tool may read while a worker or an app writes.
  const out = await run("sqlite3", ["-batch", "-bail", "-cmd", ".timeout 10000", dbPath], { stdin: sql });
  if (out.code !== 0) throw new Error(`sqlite3 ${dbPath} failed (${out.code}): ${out.stderr}`);
  return out.stdout.trim();
}

/** Options for {@link makeDatabase}. */
export interface MakeDatabaseOptions {
  /** Journal mode: "wal" or "delete". Default "wal". */
  journal?: "wal" | "delete";
  /** Rows in table `items`. Default 1000. */
  rows?: number;
  /** Bytes of random text per row. Default 100. */
  payload?: number;
}

/**
 * Creates a real database with the `sqlite3` tool: table `items` (id, name, body) with an
 * index, table `notes` with 3 rows.
 */
export async function makeDatabase(path: string, options: MakeDatabaseOptions = {}): Promise<void> {
  const { journal = "wal", rows = 1000, payload = 100 } = options;
  await sqlite3(
    path,
    `PRAGMA journal_mode=${journal};
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body TEXT);
CREATE INDEX items_name ON items(name);
CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT);
INSERT INTO notes (note) VALUES ('one'), ('two'), ('three');
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
INSERT INTO items (name, body) SELECT 'item-' || x, substr(hex(randomblob(${
      Math.ceil(payload / 2)
    })), 1, ${payload}) FROM c;`,
  );
}

/** Table name → row count, and the schema text, read with the system `sqlite3` tool. */
export async function describe(path: string): Promise<{ schema: string; counts: Record<string, number> }> {
  const schema = await sqlite3(path, "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name;");
  const tables = (await sqlite3(path, "SELECT name FROM sqlite_schema WHERE type='table' ORDER BY name;"))
    .split("\n").filter((t) => t !== "");
  const counts: Record<string, number> = {};
  for (const t of tables) counts[t] = Number(await sqlite3(path, `SELECT count(*) FROM "${t}";`));
  return { schema, counts };
}

/** The permissions the CLI runs with (as `deno task sqlbk`). */
export const CLI_PERMISSIONS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--allow-sys=hostname,statfs",
];

/** Runs `sqlbk ARGS` from source as a subprocess. */
export function sqlbk(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<Output> {
  return run(Deno.execPath(), ["run", "--quiet", ...CLI_PERMISSIONS, join(ROOT, "cli/main.ts"), ...args], options);
}

/** Starts `sqlbk ARGS` without waiting, for signal and kill tests. */
export function spawnSqlbk(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...CLI_PERMISSIONS, join(ROOT, "cli/main.ts"), ...args],
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Names in a directory, sorted, including hidden ones. */
export async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) names.push(e.name);
  return names.sort();
}

/** The archives (`*.bck.gz`) in a directory, sorted; none when it does not exist. */
export async function archives(dir: string): Promise<string[]> {
  try {
    return (await listDir(dir)).filter((n) => n.endsWith(".bck.gz"));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** The JSON objects of a command's one-object-per-line output. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** The Deno cache the tests' CLI runs share (a test's HOME must not hide it). */
export const DENO_DIR = Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache", "deno");

/** A clean environment for an ssh client: HOME in the test's temp dir (never the real ~/.ssh), no agent, the same Deno cache. */
export function clientEnv(home: string): Record<string, string> {
  return { HOME: home, SSH_AUTH_SOCK: "", DENO_DIR };
}
