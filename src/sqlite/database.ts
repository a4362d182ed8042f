import { loadSqlite, type SqliteLib } from "./ffi.ts";
import { SqliteError } from "./error.ts";
import { isEmptySql } from "./sql_text.ts";
import {
  SQLITE_BLOB,
  SQLITE_DONE,
  SQLITE_FLOAT,
  SQLITE_INTEGER,
  SQLITE_NULL,
  SQLITE_OK,
  SQLITE_OPEN_CREATE,
  SQLITE_OPEN_FULLMUTEX,
  SQLITE_OPEN_READONLY,
  SQLITE_OPEN_READWRITE,
  SQLITE_OPEN_URI,
  SQLITE_ROW,
  SQLITE_TEXT,
  SQLITE_TRANSIENT,
} from "./constants.ts";

/** A value SQLite stores or returns. Integers outside ±2^53 come back as `bigint`. */
export type SqlValue = string | number | bigint | Uint8Array | null;
/** A value that can be bound to a `?` parameter. Booleans bind as 0/1. */
export type BindValue = SqlValue | boolean;
/** One result row keyed by column name. */
export type Row = Record<string, SqlValue>;

/** How to open a database file. */
export type OpenMode = "readonly" | "readwrite" | "create";

/** Options for {@link Database}. */
export interface DatabaseOptions {
  /** `readonly`, `readwrite` (file must exist) or `create`. Default `"create"`. */
  mode?: OpenMode;
  /** How long SQLite waits on a locked database before SQLITE_BUSY, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * Open read-only as SQLite's `immutable=1` URI parameter does: no locks, and no `-wal`,
   * `-shm` or `-journal` file is ever created, even for a file whose header says WAL. Only
   * for files nothing else changes (a backup being verified), never a live database.
   * Default false.
   */
  immutable?: boolean;
}

/** A `file:` URI for `path` with `immutable=1` (`%`, `?` and `#` escaped, as SQLite's URI rules need). */
function _immutableUri(path: string): string {
  const escaped = path.replace(/[%?#]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `file:${escaped}?immutable=1`;
}

const _encoder = new TextEncoder();

/**
 * SQLite's generic English text for a result code (`sqlite3_errstr`).
 *
 * @example
 * ```ts
 * errorString(10); // "disk I/O error"
 * ```
 */
export function errorString(rc: number): string {
  return Deno.UnsafePointerView.getCString(loadSqlite().lib.sqlite3_errstr(rc)!);
}

/** NUL-terminated UTF-8 bytes for a C string parameter. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = _encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function _readPointer(slot: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(slot[0]);
}

/**
 * A connection to one SQLite database through the system libsqlite3.
 *
 * @example
 * ```ts
 * const db = new Database("app.db", { mode: "create" });
 * try {
 *   db.exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)");
 *   db.run("INSERT INTO t (x) VALUES (?)", [42]);
 *   console.log(db.query("SELECT x FROM t")); // [{ x: 42 }]
 * } finally {
 *   db.close();
 * }
 * ```
 */
export class Database {
  /** The path the connection was opened with. */
  readonly path: string;
  #lib: SqliteLib;
  #handle: Deno.PointerValue;
  #statements = new Set<Statement>();

  /**
   * Opens `path`. Throws {@link SqliteError} when SQLite refuses.
   * @param path file path (not a URI)
   * @param options mode (default `create`), busy timeout (default 5000 ms), immutable (default false)
   */
  constructor(path: string, options: DatabaseOptions = {}) {
    const { mode = "create", busyTimeoutMs = 5000, immutable = false } = options;
    this.path = path;
    this.#lib = loadSqlite().lib;
    let flags = SQLITE_OPEN_FULLMUTEX;
    if (immutable) flags |= SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
    else if (mode === "readonly") flags |= SQLITE_OPEN_READONLY;
    else if (mode === "readwrite") flags |= SQLITE_OPEN_READWRITE;
    else flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    const slot = new BigUint64Array(1);
    const rc = this.#lib.sqlite3_open_v2(
      cString(immutable ? _immutableUri(path) : path),
      new Uint8Array(slot.buffer),
      flags,
      null,
    );
    this.#handle = _readPointer(slot);
    if (rc !== SQLITE_OK) {
      const msg = this.#handle
        ? Deno.UnsafePointerView.getCString(this.#lib.sqlite3_errmsg(this.#handle)!)
        : Deno.UnsafePointerView.getCString(this.#lib.sqlite3_errstr(rc)!);
      if (this.#handle) this.#lib.sqlite3_close_v2(this.#handle);
      this.#handle = null;
      throw new SqliteError(`Cannot open database "${path}"`, rc, msg);
    }
    this.#lib.sqlite3_extended_result_codes(this.#handle, 1);
    this.#lib.sqlite3_busy_timeout(this.#handle, busyTimeoutMs);
  }

  /** The raw `sqlite3*`, for the backup API. Throws once closed. */
  get handle(): Deno.PointerObject {
    if (!this.#handle) throw new Error(`Database "${this.path}" is closed`);
    return this.#handle;
  }

  /** Whether the connection is open. */
  get isOpen(): boolean {
    return this.#handle !== null;
  }

  /** Whether a transaction is open on this connection. */
  get inTransaction(): boolean {
    return this.#lib.sqlite3_get_autocommit(this.handle) === 0;
  }

  /** Sets the busy timeout in milliseconds. */
  setBusyTimeout(ms: number): void {
    this.#lib.sqlite3_busy_timeout(this.handle, ms);
  }

  /**
   * Builds a {@link SqliteError} for result code `rc` of a call on this connection. The
   * text is this connection's `sqlite3_errmsg` only when its error code is the one that
   * failed; otherwise (the error belongs to another connection, or a later call reset it,
   * which would read "not an error") it is SQLite's generic text for `rc`.
   */
  error(action: string, rc: number): SqliteError {
    return this.errorFor(rc, action) ?? new SqliteError(action, rc, errorString(rc));
  }

  /**
   * The connection's own error for `rc` when its last error has the same primary code as
   * `rc`, else null. Lets a caller with two connections (the backup API) find which one
   * failed.
   */
  errorFor(rc: number, action = ""): SqliteError | null {
    const handle = this.#handle;
    if (!handle) return null;
    const ext = this.#lib.sqlite3_extended_errcode(handle);
    if ((ext & 0xff) !== (rc & 0xff) || (ext & 0xff) === SQLITE_OK) return null;
    const msg = Deno.UnsafePointerView.getCString(this.#lib.sqlite3_errmsg(handle)!);
    return new SqliteError(action, ext, msg);
  }

  /**
   * Compiles one SQL statement. Throws when `sql` holds more after it than whitespace,
   * semicolons and comments (a second statement would never run).
   * @example
   * ```ts
   * const stmt = db.prepare("SELECT ?1 + 1 AS n");
   * try { console.log(stmt.get([1])); } finally { stmt.finalize(); }
   * ```
   */
  prepare(sql: string): Statement {
    const bytes = _encoder.encode(sql);
    const { stmt, next } = this.#prepareOne(bytes, 0, sql);
    if (!stmt) throw new Error(`Cannot prepare an empty statement: "${sql}"`);
    const tail = new TextDecoder().decode(bytes.subarray(next));
    if (!isEmptySql(tail)) {
      // Only the first statement would run: refuse rather than drop the rest unseen.
      this.#lib.sqlite3_finalize(stmt);
      throw new Error(
        `Cannot prepare "${_clip(sql)}": it holds more than one statement (after the first comes "${
          _clip(tail.trim())
        }"); give one statement, or use exec() for several`,
      );
    }
    const statement = new Statement(this, this.#lib, stmt, sql);
    this.#statements.add(statement);
    return statement;
  }

  #prepareOne(bytes: Uint8Array<ArrayBuffer>, offset: number, sql: string): { stmt: Deno.PointerValue; next: number } {
    const stmtSlot = new BigUint64Array(1);
    const tailSlot = new BigUint64Array(1);
    const part = bytes.subarray(offset);
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(part));
    const rc = this.#lib.sqlite3_prepare_v2(
      this.handle,
      part,
      part.byteLength,
      new Uint8Array(stmtSlot.buffer),
      new Uint8Array(tailSlot.buffer),
    );
    if (rc !== SQLITE_OK) throw this.error(`Cannot prepare "${_clip(sql)}"`, rc);
    const tail = tailSlot[0];
    const consumed = tail === 0n ? part.byteLength : Number(BigInt(tail) - BigInt(base));
    return { stmt: _readPointer(stmtSlot), next: offset + consumed };
  }

  /** Runs one or more SQL statements separated by semicolons, discarding rows. */
  exec(sql: string): void {
    const bytes = _encoder.encode(sql);
    let offset = 0;
    while (offset < bytes.length) {
      const { stmt, next } = this.#prepareOne(bytes, offset, sql);
      if (next <= offset) break;
      offset = next;
      if (!stmt) continue; // whitespace or a comment
      try {
        let rc: number;
        do rc = this.#lib.sqlite3_step(stmt); while (rc === SQLITE_ROW);
        if (rc !== SQLITE_DONE) throw this.error(`Cannot run "${_clip(sql)}"`, rc);
      } finally {
        this.#lib.sqlite3_finalize(stmt);
      }
    }
  }

  /** Prepares, runs with `params` and returns every row as an object. */
  query(sql: string, params: BindValue[] = []): Row[] {
    const stmt = this.prepare(sql);
    try {
      return stmt.all(params);
    } finally {
      stmt.finalize();
    }
  }

  /** Like {@link query}, but each step runs off the JavaScript thread (for long statements). */
  async queryAsync(sql: string, params: BindValue[] = []): Promise<Row[]> {
    const stmt = this.prepare(sql);
    try {
      return await stmt.allAsync(params);
    } finally {
      stmt.finalize();
    }
  }

  /** Prepares and runs a statement; returns changed rows and the last rowid. */
  run(sql: string, params: BindValue[] = []): { changes: number; lastInsertRowid: number | bigint } {
    const stmt = this.prepare(sql);
    try {
      return stmt.run(params);
    } finally {
      stmt.finalize();
    }
  }

  /** Rows changed by the last statement. */
  changes(): number {
    return this.#lib.sqlite3_changes(this.handle);
  }

  /** Rowid of the last insert. */
  lastInsertRowid(): number | bigint {
    return _narrow(this.#lib.sqlite3_last_insert_rowid(this.handle));
  }

  /** Asks a statement running on another thread to stop with SQLITE_INTERRUPT. Safe to call any time. */
  interrupt(): void {
    if (this.#handle) this.#lib.sqlite3_interrupt(this.#handle);
  }

  /** @internal */
  _forget(stmt: Statement): void {
    this.#statements.delete(stmt);
  }

  /** Finalizes open statements and closes the connection. Calling it again does nothing. */
  close(): void {
    if (!this.#handle) return;
    for (const stmt of [...this.#statements]) stmt.finalize();
    const rc = this.#lib.sqlite3_close_v2(this.#handle);
    const handle = this.#handle;
    this.#handle = null;
    if (rc !== SQLITE_OK) {
      const msg = Deno.UnsafePointerView.getCString(this.#lib.sqlite3_errmsg(handle)!);
      throw new SqliteError(`Cannot close database "${this.path}"`, rc, msg);
    }
  }

  /** Same as closing; for `using`. */

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A compiled statement. Parameters are positional (`?`, `?N`).
 *
 * @example
 * ```ts
 * const stmt = db.prepare("SELECT name FROM sqlite_schema WHERE type = ?");
 * try { console.log(stmt.all(["table"])); } finally { stmt.finalize(); }
 * ```
 */
export class Statement {
  /** The SQL text the statement was compiled from. */
  readonly sql: string;
  #db: Database;
  #lib: SqliteLib;
  #stmt: Deno.PointerValue;

  /** @internal use {@link Database.prepare} */
  constructor(db: Database, lib: SqliteLib, stmt: Deno.PointerValue, sql: string) {
    this.#db = db;
    this.#lib = lib;
    this.#stmt = stmt;
    this.sql = sql;
  }

  get #ptr(): Deno.PointerObject {
    if (!this.#stmt) throw new Error(`Statement "${_clip(this.sql)}" is finalized`);
    return this.#stmt;
  }

  /** Resets the statement and binds `params` to its parameters 1..n. */
  bind(params: BindValue[]): this {
    const stmt = this.#ptr;
    this.#lib.sqlite3_reset(stmt);
    this.#lib.sqlite3_clear_bindings(stmt);
    const expected = this.#lib.sqlite3_bind_parameter_count(stmt);
    if (params.length !== expected) {
      throw new RangeError(`Statement "${_clip(this.sql)}" takes ${expected} parameters, got ${params.length}`);
    }
    params.forEach((value, i) => {
      const idx = i + 1;
      let rc: number;
      if (value === null || value === undefined) rc = this.#lib.sqlite3_bind_null(stmt, idx);
      else if (typeof value === "boolean") rc = this.#lib.sqlite3_bind_int64(stmt, idx, value ? 1n : 0n);
      else if (typeof value === "bigint") rc = this.#lib.sqlite3_bind_int64(stmt, idx, value);
      else if (typeof value === "number") {
        rc = Number.isSafeInteger(value)
          ? this.#lib.sqlite3_bind_int64(stmt, idx, BigInt(value))
          : this.#lib.sqlite3_bind_double(stmt, idx, value);
      } else if (typeof value === "string") {
        // A zero-length buffer may reach C as NULL, which SQLite binds as NULL: pass one
        // spare byte so "" stays an empty string.
        const bytes = _encoder.encode(value);
        const buf = bytes.byteLength > 0 ? bytes : new Uint8Array(1);
        rc = this.#lib.sqlite3_bind_text(stmt, idx, buf, bytes.byteLength, SQLITE_TRANSIENT);
      } else if (value instanceof Uint8Array) {
        if (value.byteLength === 0) rc = this.#lib.sqlite3_bind_zeroblob(stmt, idx, 0);
        else {
          const bytes = new Uint8Array(value); // own ArrayBuffer, SQLite copies it
          rc = this.#lib.sqlite3_bind_blob(stmt, idx, bytes, bytes.byteLength, SQLITE_TRANSIENT);
        }
      } else {
        throw new TypeError(`Cannot bind a value of type ${typeof value} to parameter ${idx}`);
      }
      if (rc !== SQLITE_OK) throw this.#db.error(`Cannot bind parameter ${idx} of "${_clip(this.sql)}"`, rc);
    });
    return this;
  }

  /** Runs the statement and returns every row. */
  all(params: BindValue[] = []): Row[] {
    this.bind(params);
    const rows: Row[] = [];
    for (;;) {
      const rc = this.#lib.sqlite3_step(this.#ptr);
      if (rc === SQLITE_ROW) rows.push(this.#row());
      else if (rc === SQLITE_DONE) break;
      else throw this.#stepError(rc);
    }
    this.#lib.sqlite3_reset(this.#ptr);
    return rows;
  }

  /** Like {@link all}, but each step runs on a worker thread. */
  async allAsync(params: BindValue[] = []): Promise<Row[]> {
    this.bind(params);
    const rows: Row[] = [];
    for (;;) {
      const rc = await this.#lib.sqlite3_step_nonblocking(this.#ptr);
      if (rc === SQLITE_ROW) rows.push(this.#row());
      else if (rc === SQLITE_DONE) break;
      else throw this.#stepError(rc);
    }
    this.#lib.sqlite3_reset(this.#ptr);
    return rows;
  }

  /** Runs the statement and returns the first row, or undefined. */
  get(params: BindValue[] = []): Row | undefined {
    return this.all(params)[0];
  }

  /** Runs the statement for its effect. */
  run(params: BindValue[] = []): { changes: number; lastInsertRowid: number | bigint } {
    this.all(params);
    return { changes: this.#db.changes(), lastInsertRowid: this.#db.lastInsertRowid() };
  }

  /** Runs the statement for its effect, off the JavaScript thread. */
  async runAsync(params: BindValue[] = []): Promise<void> {
    await this.allAsync(params);
  }

  #stepError(rc: number): SqliteError {
    const err = this.#db.error(`Cannot run "${_clip(this.sql)}"`, rc);
    this.#lib.sqlite3_reset(this.#ptr);
    return err;
  }

  #row(): Row {
    const stmt = this.#ptr;
    const n = this.#lib.sqlite3_column_count(stmt);
    const row: Row = {};
    for (let i = 0; i < n; i++) {
      const name = Deno.UnsafePointerView.getCString(this.#lib.sqlite3_column_name(stmt, i)!);
      row[name] = this.#column(stmt, i);
    }
    return row;
  }

  #column(stmt: Deno.PointerObject, i: number): SqlValue {
    switch (this.#lib.sqlite3_column_type(stmt, i)) {
      case SQLITE_INTEGER:
        return _narrow(this.#lib.sqlite3_column_int64(stmt, i));
      case SQLITE_FLOAT:
        return this.#lib.sqlite3_column_double(stmt, i);
      case SQLITE_TEXT: {
        const ptr = this.#lib.sqlite3_column_text(stmt, i);
        const len = this.#lib.sqlite3_column_bytes(stmt, i);
        if (!ptr || len === 0) return "";
        return new TextDecoder().decode(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, len)));
      }
      case SQLITE_BLOB: {
        const ptr = this.#lib.sqlite3_column_blob(stmt, i);
        const len = this.#lib.sqlite3_column_bytes(stmt, i);
        if (!ptr || len === 0) return new Uint8Array(0);
        return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, len).slice(0));
      }
      case SQLITE_NULL:
      default:
        return null;
    }
  }

  /** Releases the statement. Calling it again does nothing. */
  finalize(): void {
    if (!this.#stmt) return;
    this.#lib.sqlite3_finalize(this.#stmt);
    this.#stmt = null;
    this.#db._forget(this);
  }

  /** Same as closing; for `using`. */

  [Symbol.dispose](): void {
    this.finalize();
  }
}

function _narrow(value: bigint | number): number | bigint {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : BigInt(value);
}

function _clip(sql: string): string {
  const one = sql.replace(/\s+/g, " ").trim();
  return one.length > 60 ? `${one.slice(0, 57)}...` : one;
}
