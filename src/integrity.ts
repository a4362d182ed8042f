/**
 * The integrity check of a database file, on every core.
 *
 * `PRAGMA integrity_check` runs on one core, and on index-heavy databases it is the
 * longest step of a verified pull (the index cross-checks). The same findings come from
 * parts that run in parallel on separate read-only connections:
 *
 * - `PRAGMA quick_check`: the whole file's page accounting (freelist, pages never used or
 *   used twice), every b-tree's structure, records, NOT NULL and CHECK constraints;
 * - `PRAGMA integrity_check(TABLE)` for each table: that table and its indexes, with the
 *   index cross-checks and UNIQUE constraints.
 *
 * The parts run largest first by an estimate (rows × (1 + indexes) for a table, pages for
 * quick_check), so the longest never starts last.
 *
 * Every connection steps its statement with the binding's nonblocking calls, which run
 * on Deno's FFI threads: several connections awaiting a step at once run in parallel from
 * one isolate, no Workers needed. A part passes only when it returns exactly one row,
 * `ok`; the check passes only when every part does.
 *
 * Splitting pays only when there are cores to spread the parts over and no one table
 * holds the work: `quick_check` re-reads every page that table's part reads. With one
 * connection (`jobs: 1`), or when one table holds at least 90% of the estimated work
 * (rows × (1 + indexes)), the check is the single `PRAGMA integrity_check` itself, on one
 * connection given the page cache of all the connections it replaces (at most 4; none
 * when no table has an index, which is all a larger cache helps).
 *
 * @module
 */

import { Database } from "./sqlite/database.ts";
import { SqliteError } from "./sqlite/error.ts";

/** `full` (everything `PRAGMA integrity_check` checks) or `quick` (`PRAGMA quick_check` only). */
export type CheckLevel = "full" | "quick";

/** Every check level, the default first. */
export const CHECK_LEVELS: readonly CheckLevel[] = ["full", "quick"];

/** Options for {@link checkDatabase}. */
export interface CheckOptions {
  /** `full` or `quick`. Default `full`. */
  level?: CheckLevel;
  /** Connections checking at once. Default: the number of cores. */
  jobs?: number;
  /** Messages kept, as `PRAGMA integrity_check(N)`. Default 10. */
  maxMessages?: number;
  /**
   * Page cache of each connection, in MiB. Default 16: the index cross-checks look rows up
   * in every index, and with SQLite's default 2 MiB the index pages keep being evicted
   * (measured: a 258 MiB database checked 30-40% faster with 16 MiB). The single
   * `PRAGMA integrity_check` (see the module doc) gets this times min(jobs, 4), or
   * SQLite's default 2 MiB when no table has an index.
   */
  cacheMiB?: number;
  /** Interrupts every connection; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What {@link checkDatabase} found. */
export interface CheckResult {
  /** True only when every part returned exactly one row, `ok`. */
  ok: boolean;
  /** The level that ran. */
  level: CheckLevel;
  /** The first problems found (at most `maxMessages`), or the error SQLite raised; empty when ok. */
  messages: string[];
  /** Wall time of the whole check, in ms. */
  durationMs: number;
  /** Connections used. */
  jobs: number;
  /**
   * Statements run: 1 for `quick`; for `full`, `quick_check` plus one `integrity_check(TABLE)`
   * per table, or 1 when the single `PRAGMA integrity_check` ran instead (see the module doc).
   */
  parts: number;
}

/** The number of connections by default: the cores. */
export function defaultJobs(): number {
  const cores = typeof navigator !== "undefined" && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 2;
  return Math.max(1, cores);
}

interface _Part {
  sql: string;
  /** Estimated cost (NaN when unknown); larger runs first. */
  cost: number;
  /** Set only on the single pragma: whether any table has an index (what a larger page cache helps). */
  indexed?: boolean;
}

/** Share of the estimated work one table must hold for the single pragma to run instead of the split. */
const _DOMINANT = 0.9;
/** SQLite's default page cache (`PRAGMA cache_size=-2000`), in KiB. */
const _SQLITE_DEFAULT_CACHE_KIB = 2000;
/** Connections whose page cache the single pragma may take over. */
const _MAX_CACHE_SHARES = 4;

/**
 * True when one `PRAGMA integrity_check` beats the split on several connections: one
 * table holding nearly all the work (then `quick_check` would only re-read its pages).
 * A table of unknown size (WITHOUT ROWID) keeps the split.
 */
function _singleStatement(tables: _Part[]): boolean {
  if (tables.length <= 1) return true;
  if (tables.some((t) => !Number.isFinite(t.cost))) return false;
  const total = tables.reduce((sum, t) => sum + t.cost, 0);
  return total === 0 || Math.max(...tables.map((t) => t.cost)) >= _DOMINANT * total;
}

function _quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * quick_check's cost per page in the unit of a table part's (one row looked up in one
 * b-tree): measured on this project's bench databases, a page took about 4.4 µs to
 * quick-check and a row-and-index pair 0.8 µs to cross-check.
 */
const _QUICK_COST_PER_PAGE = 5.5;

/**
 * The parts of a check, quick_check first (its findings are reported first), then the
 * tables in schema order (they run largest first: {@link _runOrder}); or the single
 * pragma (see {@link _singleStatement}).
 */
function _plan(db: Database, level: CheckLevel, maxMessages: number, jobs: number): _Part[] | null {
  const pages = Number(Object.values(db.query("PRAGMA page_count")[0] ?? {})[0] ?? 0);
  if (!(pages >= 1)) return null;
  const parts: _Part[] = [{ sql: `PRAGMA quick_check(${maxMessages})`, cost: pages * _QUICK_COST_PER_PAGE }];
  if (level === "quick") return parts;
  const single = (indexed: boolean): _Part[] => [
    { sql: `PRAGMA integrity_check(${maxMessages})`, cost: Infinity, indexed },
  ];
  if (jobs === 1) {
    return single(
      Number(db.query(`SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index') AS n`)[0]?.n) === 1,
    );
  }
  const tables: _Part[] = [];
  let indexed = false;
  const schema = db.query(
    `SELECT name, sql FROM sqlite_schema WHERE type = 'table'`,
  );
  for (const row of schema) {
    const name = String(row.name);
    if (/^\s*create\s+virtual\s/i.test(String(row.sql ?? ""))) continue; // checked through its shadow tables
    const indexes = db.query(`SELECT count(*) AS n FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?`, [name]);
    const withIndexes = 1 + Number(indexes[0]?.n ?? 0);
    indexed ||= withIndexes > 1;
    let rows: number;
    try {
      // max(rowid) is a b-tree descent, not a scan: a cheap size estimate. NOT INDEXED: a
      // damaged index must not skew it.
      rows = Number(db.query(`SELECT max(rowid) AS n FROM ${_quote(name)} NOT INDEXED`)[0]?.n ?? 0);
    } catch {
      rows = NaN; // WITHOUT ROWID: size unknown, so it goes first
    }
    tables.push({ sql: `PRAGMA integrity_check(${_quote(name)})`, cost: rows * withIndexes });
  }
  return _singleStatement(tables) ? single(indexed) : [...parts, ...tables];
}

/**
 * The order the lanes take the parts in: largest estimated cost first, so the longest
 * part never starts last (quick_check, often the smallest, fills in at the end).
 */
function _runOrder(parts: _Part[]): number[] {
  const rank = (p: _Part) => Number.isNaN(p.cost) ? Number.MAX_VALUE : p.cost;
  return parts.map((_, i) => i).sort((a, b) => rank(parts[b]) - rank(parts[a]) || a - b);
}

function _failed(level: CheckLevel, started: number, messages: string[], jobs: number, parts: number): CheckResult {
  return { ok: false, level, messages, durationMs: Math.round(performance.now() - started), jobs, parts };
}

/**
 * Checks a database file with several read-only connections in parallel; finds what one
 * `PRAGMA integrity_check` finds (`full`, the default) or what `PRAGMA quick_check` finds
 * (`quick`). A file SQLite cannot read, and one with no pages (a 0-byte file is a valid,
 * empty database, but never a backup), fail the check; they are not exceptions. Every
 * connection opens the file `immutable`: use it on backups and copies, never on a live
 * database.
 *
 * @param path the database file (a verification copy, never a live database)
 * @param options level (default `full`), jobs (default: cores), maxMessages (default 10), cacheMiB (default 16), signal
 *
 * @example
 * ```ts
 * const r = await checkDatabase("restored.db", { jobs: 4 });
 * if (!r.ok) console.error(r.messages.join("\n"));
 * console.log(`${r.level} check in ${r.durationMs} ms`);
 * ```
 */
export async function checkDatabase(path: string, options: CheckOptions = {}): Promise<CheckResult> {
  const started = performance.now();
  const level = options.level ?? "full";
  const jobs = Math.max(1, Math.floor(options.jobs ?? defaultJobs()));
  const maxMessages = options.maxMessages ?? 10;
  const signal = options.signal;
  signal?.throwIfAborted();
  await Deno.stat(path); // a missing file is an error (NotFound), not a failed check
  const connections: Database[] = [];
  const cacheKiB = Math.max(1, Math.round((options.cacheMiB ?? 16) * 1024));
  const open = () => {
    // immutable: no locks, and no -wal, -shm or -journal beside a copy whose header says WAL.
    const db = new Database(path, { mode: "readonly", immutable: true });
    connections.push(db);
    db.exec(`PRAGMA cache_size=-${cacheKiB}`);
    return db;
  };
  const onAbort = () => connections.forEach((db) => db.interrupt());
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    let plan: _Part[] | null;
    try {
      plan = _plan(open(), level, maxMessages, jobs);
    } catch (err) {
      if (err instanceof SqliteError) return _failed(level, started, [err.message], 1, 0);
      throw err;
    }
    if (plan === null) {
      return _failed(level, started, ["the file is not a SQLite database with at least one page"], 1, 0);
    }
    const parts = plan;
    const found: string[][] = parts.map(() => []);
    const order = _runOrder(parts);
    let next = 0;
    const lane = async (db: Database | null) => {
      while (next < parts.length) {
        const index = order[next++];
        try {
          db ??= open();
          const rows = await db.queryAsync(parts[index].sql);
          const messages = rows.map((row) => String(Object.values(row)[0]));
          if (messages.length !== 1 || messages[0] !== "ok") {
            const bad = messages.filter((m) => m !== "ok");
            found[index] = bad.length > 0 ? bad : [`${parts[index].sql} returned ${messages.length} rows`];
          }
        } catch (err) {
          if (signal?.aborted) throw signal.reason;
          if (!(err instanceof SqliteError)) throw err;
          found[index] = [err.message];
        }
      }
    };
    const lanes = Math.min(jobs, parts.length);
    // The single pragma gets the page cache of the connections it replaces: its index
    // cross-checks look rows up all over the indexes. Without an index a large cache only
    // costs (a 257 MiB table of blobs: 179 ms with SQLite's default 2 MiB against 220 ms
    // with 32 MiB, medians of 8), so that case keeps SQLite's default.
    if (parts[0].indexed !== undefined) {
      const kib = parts[0].indexed ? cacheKiB * Math.min(jobs, _MAX_CACHE_SHARES) : _SQLITE_DEFAULT_CACHE_KIB;
      connections[0].exec(`PRAGMA cache_size=-${kib}`);
    }
    await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i === 0 ? connections[0] : null)));
    signal?.throwIfAborted();
    // quick_check's findings first (it is parts[0]), then each table's that quick_check did
    // not report already (both see NOT NULL violations and broken b-tree pages).
    const seen = new Set(found[0]);
    const messages = [...found[0], ...found.slice(1).flat().filter((m) => !seen.has(m))].slice(0, maxMessages);
    const ok = found.every((m) => m.length === 0);
    return {
      ok,
      level,
      messages,
      durationMs: Math.round(performance.now() - started),
      jobs: lanes,
      parts: parts.length,
    };
  } finally {
    signal?.removeEventListener("abort", onAbort);
    for (const db of connections) {
      try {
        db.close();
      } catch { /* a failed close of a read-only connection loses nothing */ }
    }
  }
}
