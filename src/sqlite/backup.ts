import { loadSqlite, type SqliteLib } from "./ffi.ts";
import { cString, type Database, errorString } from "./database.ts";
import { SqliteError } from "./error.ts";
import { SQLITE_OK } from "./constants.ts";

/**
 * A handle on SQLite's Online Backup API (`sqlite3_backup_*`), copying the `main`
 * database of `source` into `dest` a few pages at a time.
 *
 * `step()` runs off the JavaScript thread. Only a step that returned SQLITE_DONE proves a
 * full copy; `finish()` returning OK does not.
 *
 * @example
 * ```ts
 * const backup = new Backup(dest, source);
 * try {
 *   while ((await backup.step(100)) !== 101) {} // 101 = SQLITE_DONE
 * } finally {
 *   backup.finish();
 * }
 * ```
 */
export class Backup {
  #lib: SqliteLib;
  #handle: Deno.PointerValue;
  #dest: Database;
  #source: Database;
  #stepping = false;

  /**
   * Starts a backup of `source`'s main database into `dest`'s main database.
   * @param dest the connection written to
   * @param source the connection read from
   */
  constructor(dest: Database, source: Database) {
    this.#lib = loadSqlite().lib;
    this.#dest = dest;
    this.#source = source;
    const main = cString("main");
    this.#handle = this.#lib.sqlite3_backup_init(dest.handle, main, source.handle, main);
    if (!this.#handle) {
      // On failure the error is stored on the destination connection.
      throw dest.error("Cannot start the online backup", this.#lib.sqlite3_extended_errcode(dest.handle));
    }
  }

  /**
   * Copies up to `pages` pages (negative: all). Resolves to the raw result code:
   * SQLITE_OK (more to do), SQLITE_DONE, SQLITE_BUSY/SQLITE_LOCKED (retry), or another
   * error code.
   */
  async step(pages: number): Promise<number> {
    if (!this.#handle) throw new Error("The backup handle is finished");
    if (this.#stepping) throw new Error("A backup step is already running");
    this.#stepping = true;
    try {
      return await this.#lib.sqlite3_backup_step(this.#handle, pages);
    } finally {
      this.#stepping = false;
    }
  }

  /** Pages still to copy, as of the last step. */
  get remaining(): number {
    return this.#handle ? this.#lib.sqlite3_backup_remaining(this.#handle) : 0;
  }

  /** Pages in the source database, as of the last step. */
  get pageCount(): number {
    return this.#handle ? this.#lib.sqlite3_backup_pagecount(this.#handle) : 0;
  }

  /**
   * Releases the handle. Throws {@link SqliteError} when the backup failed. Calling it
   * again does nothing.
   */
  finish(): void {
    if (!this.#handle) return;
    const rc = this.#lib.sqlite3_backup_finish(this.#handle);
    this.#handle = null;
    if (rc !== SQLITE_OK) throw this.error("The online backup failed", rc);
  }

  /**
   * The error for a failed step or finish, with the message of the connection that failed:
   * the source's when reading it failed (named as the source), the destination's when
   * writing failed, else SQLite's generic text for `rc`.
   */
  error(action: string, rc: number): SqliteError {
    return this.#dest.errorFor(rc, `${action} writing "${this.#dest.path}"`) ??
      this.#source.errorFor(rc, `${action} reading "${this.#source.path}"`) ??
      new SqliteError(action, rc, errorString(rc));
  }

  /** Same as closing; for `using`. */

  [Symbol.dispose](): void {
    try {
      this.finish();
    } catch (err) {
      if (!(err instanceof SqliteError)) throw err;
    }
  }
}
