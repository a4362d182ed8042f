/**
 * The FFI symbol table for libsqlite3 and the code that finds and loads the library.
 *
 * All SQLite access in sqlbk goes through the one library loaded here: two copies of
 * SQLite in one process break POSIX advisory locking on shared files.
 *
 * @module
 */

import { dlopenReason } from "../native.ts";

/** Smallest SQLite version sqlbk accepts (`VACUUM INTO` with a bound target, RETURNING). */
export const MIN_SQLITE_VERSION = "3.35.0";
const _MIN_VERSION_NUMBER = 3035000;

/**
 * The C functions sqlbk calls. Types match sqlite3.h exactly: `int` is `i32`,
 * `sqlite3_int64` is `i64`, pointers are `pointer` (or `buffer` when Deno passes a
 * typed array in). Symbols marked `nonblocking` run on a worker thread and return a
 * promise, so long calls never freeze the JavaScript event loop.
 */
export const SYMBOLS = {
  /** const char *sqlite3_libversion(void) */
  sqlite3_libversion: { parameters: [], result: "pointer" },
  /** int sqlite3_libversion_number(void) */
  sqlite3_libversion_number: { parameters: [], result: "i32" },
  /** int sqlite3_threadsafe(void) */
  sqlite3_threadsafe: { parameters: [], result: "i32" },
  /** int sqlite3_open_v2(const char *filename, sqlite3 **ppDb, int flags, const char *zVfs) */
  sqlite3_open_v2: {
    parameters: [
      "buffer", // filename: NUL-terminated UTF-8
      "buffer", // ppDb: out, 8-byte slot receiving the sqlite3*
      "i32", // flags: SQLITE_OPEN_*
      "pointer", // zVfs: NULL for the default VFS
    ],
    result: "i32",
  },
  /** int sqlite3_close_v2(sqlite3 *db) */
  sqlite3_close_v2: { parameters: ["pointer"], result: "i32" },
  /** const char *sqlite3_errmsg(sqlite3 *db) */
  sqlite3_errmsg: { parameters: ["pointer"], result: "pointer" },
  /** const char *sqlite3_errstr(int rc) */
  sqlite3_errstr: { parameters: ["i32"], result: "pointer" },
  /** int sqlite3_extended_errcode(sqlite3 *db) */
  sqlite3_extended_errcode: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_extended_result_codes(sqlite3 *db, int onoff) */
  sqlite3_extended_result_codes: { parameters: ["pointer", "i32"], result: "i32" },
  /** int sqlite3_busy_timeout(sqlite3 *db, int ms) */
  sqlite3_busy_timeout: { parameters: ["pointer", "i32"], result: "i32" },
  /** void sqlite3_interrupt(sqlite3 *db): thread-safe, stops a running statement */
  sqlite3_interrupt: { parameters: ["pointer"], result: "void" },
  /** int sqlite3_get_autocommit(sqlite3 *db) */
  sqlite3_get_autocommit: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_changes(sqlite3 *db) */
  sqlite3_changes: { parameters: ["pointer"], result: "i32" },
  /** sqlite3_int64 sqlite3_last_insert_rowid(sqlite3 *db) */
  sqlite3_last_insert_rowid: { parameters: ["pointer"], result: "i64" },
  /** int sqlite3_prepare_v2(sqlite3 *db, const char *zSql, int nByte, sqlite3_stmt **ppStmt, const char **pzTail) */
  sqlite3_prepare_v2: {
    parameters: [
      "pointer", // db
      "buffer", // zSql: UTF-8 bytes
      "i32", // nByte: length of zSql in bytes
      "buffer", // ppStmt: out, 8-byte slot receiving the sqlite3_stmt*
      "buffer", // pzTail: out, 8-byte slot receiving the end of the first statement
    ],
    result: "i32",
  },
  /** int sqlite3_step(sqlite3_stmt *stmt): quick statements, on the JS thread */
  sqlite3_step: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_step(sqlite3_stmt *stmt): long statements (VACUUM INTO, integrity_check) off the JS thread */
  sqlite3_step_nonblocking: {
    name: "sqlite3_step",
    parameters: ["pointer"],
    result: "i32",
    nonblocking: true,
  },
  /** int sqlite3_reset(sqlite3_stmt *stmt) */
  sqlite3_reset: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_finalize(sqlite3_stmt *stmt) */
  sqlite3_finalize: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_clear_bindings(sqlite3_stmt *stmt) */
  sqlite3_clear_bindings: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_bind_parameter_count(sqlite3_stmt *stmt) */
  sqlite3_bind_parameter_count: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_bind_text(sqlite3_stmt *stmt, int idx, const char *text, int n, void (*destructor)(void*)) */
  sqlite3_bind_text: {
    parameters: [
      "pointer", // stmt
      "i32", // idx: 1-based parameter index
      "buffer", // text: UTF-8 bytes
      "i32", // n: byte length
      "isize", // destructor: SQLITE_TRANSIENT (-1), SQLite copies the bytes
    ],
    result: "i32",
  },
  /** int sqlite3_bind_blob(sqlite3_stmt *stmt, int idx, const void *data, int n, void (*destructor)(void*)) */
  sqlite3_bind_blob: {
    parameters: [
      "pointer", // stmt
      "i32", // idx: 1-based parameter index
      "buffer", // data
      "i32", // n: byte length
      "isize", // destructor: SQLITE_TRANSIENT (-1), SQLite copies the bytes
    ],
    result: "i32",
  },
  /** int sqlite3_bind_zeroblob(sqlite3_stmt *stmt, int idx, int n): an empty blob, not NULL */
  sqlite3_bind_zeroblob: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  /** int sqlite3_bind_int64(sqlite3_stmt *stmt, int idx, sqlite3_int64 value) */
  sqlite3_bind_int64: { parameters: ["pointer", "i32", "i64"], result: "i32" },
  /** int sqlite3_bind_double(sqlite3_stmt *stmt, int idx, double value) */
  sqlite3_bind_double: { parameters: ["pointer", "i32", "f64"], result: "i32" },
  /** int sqlite3_bind_null(sqlite3_stmt *stmt, int idx) */
  sqlite3_bind_null: { parameters: ["pointer", "i32"], result: "i32" },
  /** int sqlite3_column_count(sqlite3_stmt *stmt) */
  sqlite3_column_count: { parameters: ["pointer"], result: "i32" },
  /** const char *sqlite3_column_name(sqlite3_stmt *stmt, int col) */
  sqlite3_column_name: { parameters: ["pointer", "i32"], result: "pointer" },
  /** int sqlite3_column_type(sqlite3_stmt *stmt, int col) */
  sqlite3_column_type: { parameters: ["pointer", "i32"], result: "i32" },
  /** sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *stmt, int col) */
  sqlite3_column_int64: { parameters: ["pointer", "i32"], result: "i64" },
  /** double sqlite3_column_double(sqlite3_stmt *stmt, int col) */
  sqlite3_column_double: { parameters: ["pointer", "i32"], result: "f64" },
  /** const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int col) */
  sqlite3_column_text: { parameters: ["pointer", "i32"], result: "pointer" },
  /** const void *sqlite3_column_blob(sqlite3_stmt *stmt, int col) */
  sqlite3_column_blob: { parameters: ["pointer", "i32"], result: "pointer" },
  /** int sqlite3_column_bytes(sqlite3_stmt *stmt, int col) */
  sqlite3_column_bytes: { parameters: ["pointer", "i32"], result: "i32" },
  /** sqlite3_backup *sqlite3_backup_init(sqlite3 *pDest, const char *zDestName, sqlite3 *pSource, const char *zSourceName) */
  sqlite3_backup_init: {
    parameters: [
      "pointer", // pDest: destination connection
      "buffer", // zDestName: "main"
      "pointer", // pSource: source connection
      "buffer", // zSourceName: "main"
    ],
    result: "pointer",
  },
  /** int sqlite3_backup_step(sqlite3_backup *p, int nPage): off the JS thread */
  sqlite3_backup_step: {
    parameters: [
      "pointer", // p: backup handle
      "i32", // nPage: pages to copy in this step, negative for all
    ],
    result: "i32",
    nonblocking: true,
  },
  /** int sqlite3_backup_finish(sqlite3_backup *p) */
  sqlite3_backup_finish: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_backup_remaining(sqlite3_backup *p) */
  sqlite3_backup_remaining: { parameters: ["pointer"], result: "i32" },
  /** int sqlite3_backup_pagecount(sqlite3_backup *p) */
  sqlite3_backup_pagecount: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's functions. */
export type SqliteLib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let _lib: { lib: SqliteLib; path: string; version: string } | null = null;

/** The library names tried after the environment variables, for this platform. */
export function platformLibraryNames(os: typeof Deno.build.os = Deno.build.os): string[] {
  switch (os) {
    case "darwin":
      return ["libsqlite3.dylib", "/usr/lib/libsqlite3.dylib", "/opt/homebrew/opt/sqlite/lib/libsqlite3.dylib"];
    case "windows":
      return ["sqlite3.dll", "winsqlite3.dll"];
    default:
      return ["libsqlite3.so.0", "libsqlite3.so"];
  }
}

function _envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env for this name: skip it
  }
}

/**
 * Raised when libsqlite3 cannot be found, loaded, or is too old.
 *
 * @example
 * ```ts
 * try {
 *   loadSqlite();
 * } catch (err) {
 *   if (err instanceof SqliteLoadError) console.error(err.message); // the names it tried
 * }
 * ```
 */
export class SqliteLoadError extends Error {
  /** Always `"SqliteLoadError"`. */
  override name = "SqliteLoadError";
  /** Exit code 2: the library to use is configuration (`SQLBK_SQLITE_LIB`, the installed packages); nothing ran. */
  readonly exitCode: number = 2;
}

/**
 * Loads libsqlite3 once per process and returns its symbols.
 *
 * Lookup order: `SQLBK_SQLITE_LIB`, `DENO_SQLITE_PATH`, then the platform names
 * (`libsqlite3.so.0`, `libsqlite3.dylib`, `sqlite3.dll`/`winsqlite3.dll`).
 *
 * @example
 * ```ts
 * const { version } = loadSqlite();
 * console.log(version); // "3.40.1"
 * ```
 */
export function loadSqlite(): { lib: SqliteLib; path: string; version: string } {
  if (_lib) return _lib;
  const candidates: string[] = [];
  const fromEnv = _envVar("SQLBK_SQLITE_LIB");
  const fromDeno = _envVar("DENO_SQLITE_PATH");
  if (fromEnv) candidates.push(fromEnv);
  if (fromDeno) candidates.push(fromDeno);
  candidates.push(...platformLibraryNames());
  const failures: string[] = [];
  for (const path of candidates) {
    let dl: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      dl = Deno.dlopen(path, SYMBOLS);
    } catch (err) {
      // An explicit SQLBK_SQLITE_LIB that fails to load is the user's choice: do not
      // silently fall back to another library.
      if (path === fromEnv) {
        throw new SqliteLoadError(
          `Cannot load SQLBK_SQLITE_LIB="${fromEnv}": ${
            dlopenReason(err)
          } (point it at libsqlite3, or unset it to use the system's)`,
        );
      }
      failures.push(`${path} (${dlopenReason(err)})`);
      continue;
    }
    const lib = dl.symbols;
    const number = lib.sqlite3_libversion_number();
    const version = Deno.UnsafePointerView.getCString(lib.sqlite3_libversion()!);
    if (number < _MIN_VERSION_NUMBER) {
      dl.close();
      throw new SqliteLoadError(
        `SQLite ${version} at "${path}" is too old: sqlbk needs SQLite ${MIN_SQLITE_VERSION} or newer; ` +
          `install a newer libsqlite3 or point SQLBK_SQLITE_LIB at one`,
      );
    }
    if (lib.sqlite3_threadsafe() === 0) {
      dl.close();
      throw new SqliteLoadError(
        `SQLite at "${path}" was built without thread safety (SQLITE_THREADSAFE=0): ` +
          `sqlbk runs long calls on a worker thread; point SQLBK_SQLITE_LIB at a thread-safe build`,
      );
    }
    _lib = { lib, path, version };
    return _lib;
  }
  throw new SqliteLoadError(
    `Cannot load libsqlite3: tried ${failures.join(", ")}; ` +
      `install libsqlite3 (Debian/Ubuntu: apt-get install libsqlite3-0) or set SQLBK_SQLITE_LIB to the library's path`,
  );
}
