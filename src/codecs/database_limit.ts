/**
 * The bound that stops decompression bombs: a backup's decompressed output must be a
 * SQLite database, no larger than the size its header gives, and must leave a safety
 * margin of free space on the file system it is written to. {@link DatabaseOutputGuard}
 * checks each block before it is written, so decompression stops at the first block that
 * breaks the rule and nothing past the limit is ever written.
 *
 * The rule:
 * - the first 16 bytes must be `SQLite format 3\0` and the page size (offset 16) a SQLite
 *   page size, else the output is not a database;
 * - when the header's in-header database size is valid (the page count at offset 28 is
 *   non-zero and the version-valid-for number at offset 92 equals the change counter at
 *   offset 24, as SQLite >= 3.7.0 always writes), the output may not exceed
 *   page size × page count;
 * - whatever the header says, before every 64 MiB of output the free space of the output's
 *   file system is checked: the output may not leave less than the smaller of 256 MiB and
 *   5% of that file system's size.
 *
 * Output shorter than the 100-byte header is compared only with the magic bytes it has;
 * the integrity check that follows fails it (SQLite reads no database from it).
 *
 * @module
 */

import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import { DecompressError } from "./decompressor.ts";
import { formatBytes } from "../format.ts";
import { ConfigError } from "../errors.ts";

/** The first 16 bytes of every SQLite database file. */
const _MAGIC = new TextEncoder().encode("SQLite format 3\0");
/** Output between two free-space checks. */
const _FREE_SPACE_CHECK_BYTES = 64 << 20;
/** The free-space margin never exceeds this: 256 MiB. */
const _FREE_SPACE_MARGIN_MAX = 256 << 20;

/** The error codes of output that breaks the database rule (the archive fails verification). */
const _OUTPUT_LIMIT_CODES = ["SQLBK_NOT_SQLITE", "SQLBK_TOO_LARGE"] as const;
/** The error code of output that would leave too little free space (a failure, not a bad archive). */
export const LOW_SPACE_CODE = "SQLBK_LOW_SPACE";

/**
 * Decompressed output that cannot be the database it claims to be: not a SQLite file
 * (`SQLBK_NOT_SQLITE`), or larger than its header's size (`SQLBK_TOO_LARGE`).
 *
 * @example
 * ```ts
 * const err = new OutputLimitError("SQLBK_TOO_LARGE", "too large");
 * isCorruptData(err); // true
 * ```
 */
export class OutputLimitError extends DecompressError {
  /** Always `"OutputLimitError"`. */
  override name = "OutputLimitError";
}

/**
 * Decompressing further would leave less free space than the margin (code `SQLBK_LOW_SPACE`).
 *
 * @example
 * ```ts
 * checkFreeSpace("/srv/pulled", 1 << 20); // throws LowSpaceError when that would leave too little
 * ```
 */
export class LowSpaceError extends Error {
  /** Always `"LowSpaceError"`. */
  override name = "LowSpaceError";
  /** Always {@link LOW_SPACE_CODE}. */
  readonly code = LOW_SPACE_CODE;
}

/**
 * Whether an error (or a worker's `{ code }` copy of one) is output that broke the database
 * rule: the archive fails verification.
 *
 * @example
 * ```ts
 * isOutputLimit({ code: "SQLBK_TOO_LARGE" }); // true
 * ```
 */
export function isOutputLimit(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (_OUTPUT_LIMIT_CODES as readonly unknown[]).includes(code);
}

/** What the first 100 bytes of a database say about its size. */
export interface HeaderSize {
  /** Bytes per page (512-65536). */
  pageSize: number;
  /** The in-header page count, or null when the header marks it not valid. */
  pageCount: number | null;
  /** pageSize × pageCount, or null when the page count is not valid. */
  bytes: number | null;
}

/**
 * Reads page size and in-header page count from the first 100 bytes of a database; throws
 * an {@link OutputLimitError} (`SQLBK_NOT_SQLITE`) when they are not a SQLite header.
 *
 * @example
 * ```ts
 * const { bytes } = headerSize((await Deno.readFile("copy.db")).subarray(0, 100));
 * ```
 */
export function headerSize(header: Uint8Array): HeaderSize {
  if (header.length < 100 || _MAGIC.some((b, i) => header[i] !== b)) {
    throw new OutputLimitError(
      "SQLBK_NOT_SQLITE",
      `it does not decompress to a SQLite database (no "SQLite format 3" header)`,
    );
  }
  const view = new DataView(header.buffer, header.byteOffset, 100);
  const raw = view.getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new OutputLimitError(
      "SQLBK_NOT_SQLITE",
      `it does not decompress to a SQLite database (page size ${raw} in its header)`,
    );
  }
  const count = view.getUint32(28);
  const valid = count > 0 && view.getUint32(92) === view.getUint32(24);
  return { pageSize, pageCount: valid ? count : null, bytes: valid ? pageSize * count : null };
}

/**
 * The free space a decompression must leave on a file system of `totalBytes`: the smaller
 * of 256 MiB and 5% of it.
 *
 * @example
 * ```ts
 * freeSpaceMargin(1 << 30); // 53687091 (5% of 1 GiB)
 * ```
 */
export function freeSpaceMargin(totalBytes: number): number {
  return Math.min(_FREE_SPACE_MARGIN_MAX, Math.floor(totalBytes * 0.05));
}

/**
 * Throws a ConfigError unless this process may call `statfs` (`--allow-sys=statfs`), which
 * the free-space rule needs: said before any work, not at the first block.
 *
 * @example
 * ```ts
 * checkFreeSpacePermission();
 * ```
 */
export function checkFreeSpacePermission(): void {
  if (Deno.permissions.querySync({ name: "sys", kind: "statfs" }).state !== "granted") throw _noPermission();
}

function _noPermission(dir?: string, cause?: unknown): ConfigError {
  return new ConfigError(
    `Cannot check the free space${
      dir === undefined ? "" : ` in "${dir}"`
    } before decompressing: run with --allow-sys=statfs (as "deno task sqlbk" does)`,
    { cause },
  );
}

/**
 * The free space in `dir` after writing `bytesAhead` more bytes, against the margin to keep
 * (default {@link freeSpaceMargin} of the file system): null when that much fits, else
 * what `statfs` says (the space available to this user) and the margin. Needs
 * `--allow-sys=statfs`: without it, throws a ConfigError saying so.
 *
 * @example
 * ```ts
 * const short = freeSpaceShortfall("/srv/pulled", 64 << 20);
 * if (short) console.error(`only ${short.free} bytes free`);
 * ```
 */
export function freeSpaceShortfall(
  dir: string,
  bytesAhead: number,
  options: { margin?: number } = {},
): { free: number; margin: number } | null {
  let fs: ReturnType<typeof statfsSync>;
  try {
    fs = statfsSync(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw _noPermission(dir, err);
    }
    throw err;
  }
  const free = fs.bavail * fs.bsize;
  const margin = options.margin ?? freeSpaceMargin(fs.blocks * fs.bsize);
  return free - bytesAhead < margin ? { free, margin } : null;
}

/**
 * Throws a {@link LowSpaceError} when writing `bytesAhead` more bytes into `dir` would
 * leave less than `margin` free (see {@link freeSpaceShortfall}).
 *
 * @example
 * ```ts
 * checkFreeSpace("/srv/pulled", 64 << 20);
 * ```
 */
export function checkFreeSpace(dir: string, bytesAhead: number, options: { margin?: number } = {}): void {
  const short = freeSpaceShortfall(dir, bytesAhead, options);
  if (short) {
    throw new LowSpaceError(
      `decompressing it would leave less than ${formatBytes(short.margin)} free in "${dir}" (${
        formatBytes(short.free)
      } free; decompression keeps the smaller of 256 MiB and 5% of the file system free): free some space there`,
    );
  }
}

/**
 * Checks each block of decompressed output before it is written to `outputPath` (see the
 * module doc for the rule); {@link DatabaseOutputGuard.admit} throws at the first block
 * that breaks it.
 *
 * @example
 * ```ts
 * const guard = new DatabaseOutputGuard("/srv/pulled/.sqlbk-verify-1a2b3c4d.db");
 * const d = openDecompressor("auto", (block) => {
 *   guard.admit(block);
 *   // ...write block
 * });
 * ```
 */
export class DatabaseOutputGuard {
  #dir: string;
  #margin: number | undefined;
  #head = new Uint8Array(100);
  #headLen = 0;
  #size: HeaderSize | null = null;
  #written = 0;
  #nextCheck = 0;

  /**
   * @param outputPath the file the output goes to (its directory's file system is checked)
   * @param options `margin`: the free space to keep, in bytes (default {@link freeSpaceMargin})
   */
  constructor(outputPath: string, options: { margin?: number } = {}) {
    this.#dir = dirname(outputPath);
    this.#margin = options.margin;
  }

  /** Throws when writing `block` next would break the rule; else counts it as written. */
  admit(block: Uint8Array): void {
    if (this.#headLen < 100) {
      const n = Math.min(100 - this.#headLen, block.length);
      this.#head.set(block.subarray(0, n), this.#headLen);
      this.#headLen += n;
      const known = Math.min(this.#headLen, _MAGIC.length);
      if (_MAGIC.subarray(0, known).some((b, i) => this.#head[i] !== b)) headerSize(this.#head); // throws: not a database
      if (this.#headLen === 100) this.#size = headerSize(this.#head);
    }
    const after = this.#written + block.length;
    const limit = this.#size?.bytes ?? null;
    if (limit !== null && after > limit) {
      const { pageSize, pageCount } = this.#size!;
      throw new OutputLimitError(
        "SQLBK_TOO_LARGE",
        `it decompresses to more than ${limit} bytes, the database size its SQLite header gives (${pageCount} page${
          pageCount === 1 ? "" : "s"
        } of ${pageSize} bytes); decompression stopped there`,
      );
    }
    if (after > this.#nextCheck) {
      const window = block.length + _FREE_SPACE_CHECK_BYTES;
      checkFreeSpace(this.#dir, limit === null ? window : Math.min(window, limit - this.#written), {
        margin: this.#margin,
      });
      this.#nextCheck = this.#written + _FREE_SPACE_CHECK_BYTES;
    }
    this.#written = after;
  }
}
