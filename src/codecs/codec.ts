/**
 * The codecs behind one small interface: which codec a file name or its first bytes say,
 * compress a file on every core, and start a streaming decompressor. Backup, pull, verify
 * and restore call only this; adding a codec touches this folder and the name grammar.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { CompressOptions, CompressResult } from "./_block_compress.ts";
import { DecompressError, type Decompressor, type DecompressSink } from "./decompressor.ts";
import { checkFreeSpacePermission, isOutputLimit } from "./database_limit.ts";
import { gunzipBackend, openGunzip } from "./gunzip.ts";
import { gzipFile } from "./gzip.ts";
import { type Codec, CODEC_EXTENSIONS, CODEC_NAMES } from "./levels.ts";
import { openUnzstd, zstdFile } from "./zstd.ts";

export { type Codec, CODEC_EXTENSIONS, CODEC_NAMES, LEVELS } from "./levels.ts";
export type { CompressOptions, CompressResult } from "./_block_compress.ts";

const _SQLITE = "SQLite format 3\0";

/**
 * What the first bytes of a file are: a gzip or zstd archive, an SQLite database, or
 * null for anything else (fewer than 4 bytes included).
 *
 * @example
 * ```ts
 * detectFormat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])); // "zstd"
 * detectFormat(new Uint8Array([0x1f, 0x8b, 8, 0])); // "gzip"
 * ```
 */
export function detectFormat(head: Uint8Array): Codec | "sqlite" | null {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  if (head.length >= 16 && new TextDecoder().decode(head.subarray(0, 16)) === _SQLITE) return "sqlite";
  return null;
}

/**
 * {@link detectFormat} of a file's first 16 bytes.
 *
 * @example
 * ```ts
 * await detectFileFormat("backups/app-2025-07-01T10-30-00Z-online.bck.zst"); // "zstd"
 * ```
 */
export async function detectFileFormat(path: string): Promise<Codec | "sqlite" | null> {
  const file = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(16);
    let n = 0;
    while (n < head.length) {
      const got = await file.read(head.subarray(n));
      if (got === null) break;
      n += got;
    }
    return detectFormat(head.subarray(0, n));
  } finally {
    file.close();
  }
}

/**
 * The codec a file name says: `.gz` is gzip, `.zst` is zstd, anything else null.
 *
 * @example
 * ```ts
 * codecOfName("app-2025-07-01T10-30-00Z-online.bck.zst"); // "zstd"
 * codecOfName("app.db"); // null
 * ```
 */
export function codecOfName(name: string): Codec | null {
  for (const codec of CODEC_NAMES) if (name.toLowerCase().endsWith(CODEC_EXTENSIONS[codec])) return codec;
  return null;
}

/**
 * Parses a codec name from a config value or a flag; throws a ConfigError naming `label`.
 *
 * @example
 * ```ts
 * parseCodec("zstd", "--compression"); // "zstd"
 * ```
 */
export function parseCodec(value: unknown, label: string): Codec {
  if (typeof value === "string" && (CODEC_NAMES as readonly string[]).includes(value)) return value as Codec;
  throw new ConfigError(
    `Invalid ${label} ${JSON.stringify(value)}: expected ${CODEC_NAMES.map((c) => `"${c}"`).join(" or ")}`,
  );
}

/** Options for {@link compressFile}: the codec, and the compressor's {@link CompressOptions}. */
export interface CompressFileOptions extends CompressOptions {
  /** The codec to compress with (`"gzip"` or `"zstd"`). Required: no default. */
  codec: Codec;
}

/**
 * Compresses `inputPath` into `output` with `options.codec` on every core, hashing what
 * it writes.
 *
 * @example
 * ```ts
 * const out = await Deno.open("app.db.zst", { write: true, createNew: true });
 * try {
 *   await compressFile("app.db", out, { codec: "zstd" });
 *   await out.sync();
 * } finally {
 *   out.close();
 * }
 * ```
 */
export async function compressFile(
  inputPath: string,
  output: Deno.FsFile,
  options: CompressFileOptions,
): Promise<CompressResult> {
  const { codec, ...compress } = options;
  return codec === "zstd" ? await zstdFile(inputPath, output, compress) : await gzipFile(inputPath, output, compress);
}

/**
 * Starts a streaming decompressor for `codec`, or for whatever the first bytes say with
 * `"auto"`. With `expect`, data of another codec is rejected as corrupt (an archive whose
 * name and content disagree).
 *
 * @example
 * ```ts
 * const d = openDecompressor("auto", (block) => console.log(block.length));
 * await d.push(await Deno.readFile("app.bck.zst"));
 * await d.end();
 * d.dispose();
 * ```
 */
export function openDecompressor(
  codec: Codec | "auto",
  sink: DecompressSink,
  options: { expect?: Codec | null } = {},
): Decompressor {
  if (codec !== "auto") return codec === "zstd" ? openUnzstd(sink) : openGunzip(sink);
  return new _Sniffing(sink, options.expect ?? null);
}

/** Buffers the first 4 bytes, then hands everything to the codec they name. */
class _Sniffing implements Decompressor {
  #sink: DecompressSink;
  #expect: Codec | null;
  #head = new Uint8Array(0);
  #inner: Decompressor | null = null;

  constructor(sink: DecompressSink, expect: Codec | null) {
    this.#sink = sink;
    this.#expect = expect;
  }

  get backend(): string {
    return this.#inner?.backend ?? "none";
  }

  async push(input: Uint8Array): Promise<void> {
    if (this.#inner) return await this.#inner.push(input);
    const head = new Uint8Array(this.#head.length + input.length);
    head.set(this.#head);
    head.set(input, this.#head.length);
    if (head.length < 4) {
      this.#head = head;
      return;
    }
    const found = detectFormat(head.subarray(0, 4));
    if (found !== "gzip" && found !== "zstd") {
      throw new DecompressError("BAD_MAGIC", `not ${this.#expect ? `${this.#expect} data` : "a gzip or zstd archive"}`);
    }
    if (this.#expect && found !== this.#expect) {
      throw new DecompressError("BAD_MAGIC", `the name says ${this.#expect} but the data is ${found}`);
    }
    this.#inner = openDecompressor(found, this.#sink);
    this.#head = new Uint8Array(0);
    await this.#inner.push(head);
  }

  async end(): Promise<void> {
    if (!this.#inner) throw new DecompressError("TRUNCATED", "unexpected end of file: no archive header");
    await this.#inner.end();
  }

  dispose(): void {
    this.#inner?.dispose();
  }
}

/**
 * Loads what the decompressors need (libz when present); a bad `SQLBK_LIBZ`, or no
 * `--allow-sys=statfs` for the free-space rule, throws a ConfigError here, before any work,
 * not halfway through a pull.
 *
 * @example
 * ```ts
 * checkDecompressors();
 * ```
 */
export function checkDecompressors(): void {
  gunzipBackend();
  checkFreeSpacePermission();
}

/**
 * Whether a decompression error means corrupt or truncated data (not an I/O failure):
 * a {@link DecompressError}, zlib's `Z_*` codes, or its messages for a short or malformed
 * stream.
 *
 * @example
 * ```ts
 * isCorruptData(new DecompressError("ZSTD_TRUNCATED", "unexpected end of file")); // true
 * ```
 */
export function isCorruptData(err: unknown): boolean {
  if (err instanceof ConfigError) return false; // e.g. a bad SQLBK_LIBZ, whatever its text says
  if (err instanceof DecompressError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : (err as { message?: unknown } | null)?.message;
  return (typeof code === "string" &&
    (code.startsWith("Z_") || code.startsWith("ZSTD_") || code === "BAD_MAGIC" || code === "TRUNCATED" ||
      isOutputLimit(err) ||
      code === "ERR_ZLIB_INITIALIZATION_FAILED")) ||
    /unexpected end of file|incorrect header|invalid/i.test(String(message ?? err));
}
