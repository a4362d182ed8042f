import { resultCodeName } from "./constants.ts";

/**
 * An error reported by SQLite: the primary result code, the extended code and the text
 * `sqlite3_errmsg` gave.
 *
 * @example
 * ```ts
 * import { SqliteError } from "./error.ts";
 * try {
 *   // ... a database call
 * } catch (err) {
 *   if (err instanceof SqliteError && err.codeName === "SQLITE_BUSY") {
 *     // retry later
 *   }
 * }
 * ```
 */
export class SqliteError extends Error {
  /** Always `"SqliteError"`. */
  override name = "SqliteError";
  /** Primary result code (`extendedCode & 0xff`), e.g. 5 for SQLITE_BUSY. */
  readonly code: number;
  /** Extended result code, e.g. 261 for SQLITE_BUSY_RECOVERY. */
  readonly extendedCode: number;
  /** The text of `sqlite3_errmsg` (or `sqlite3_errstr` when no connection exists). */
  readonly sqliteMessage: string;

  /**
   * Builds the error; the message reads `<action>: <sqlite message> (<code name>)`.
   * @param action what sqlbk was doing, e.g. `Cannot open database "app.db"`
   * @param extendedCode the extended result code
   * @param sqliteMessage SQLite's own text for the error
   */
  constructor(action: string, extendedCode: number, sqliteMessage: string, options?: ErrorOptions) {
    super(`${action}: ${sqliteMessage} (${resultCodeName(extendedCode)})`, options);
    this.extendedCode = extendedCode;
    this.code = extendedCode & 0xff;
    this.sqliteMessage = sqliteMessage;
  }

  /** The symbolic name of the primary code, e.g. `"SQLITE_CORRUPT"`. */
  get codeName(): string {
    return resultCodeName(this.code);
  }
}
