/**
 * Streaming gunzip for verification and restores: the system zlib over FFI when it loads
 * (`SQLBK_LIBZ`, else the platform's usual name), else node:zlib.
 *
 * Why two: on a 251 MiB archive, node:zlib's gunzip stream under Deno took 0.8-1.9 s
 * (per-chunk overhead in its stream plumbing); libz itself inflates it in about 0.15 s.
 * Both check the gzip CRC-32 and length, and both accept concatenated members.
 *
 * @module
 */

import zlib from "node:zlib";
import { loadOptionalLibrary } from "../native.ts";
import { DecompressError, type Decompressor, type DecompressSink } from "./decompressor.ts";

/** Receives each block of output; the block is reused after the returned promise settles. */
export type GunzipSink = DecompressSink;

/** A gunzip fed block by block; `end()` rejects (code `Z_BUF_ERROR`) when the gzip data is truncated. */
export interface Gunzip extends Decompressor {
  /** Which implementation runs it. */
  readonly backend: "libz" | "node:zlib";
}

/**
 * A corrupt or truncated gzip stream; `code` starts with `Z_` as node:zlib's errors do.
 *
 * @example
 * ```ts
 * const gz = openGunzip(() => {});
 * await gz.end().catch((err) => console.log(err instanceof GunzipError && err.code)); // "Z_BUF_ERROR"
 * ```
 */
export class GunzipError extends DecompressError {
  /** Always `"GunzipError"`. */
  override name = "GunzipError";
}

/** The zlib functions used (zlib.h); `int` is `i32`, the z_stream is passed as a `buffer`. */
const _SYMBOLS = {
  /** const char *zlibVersion(void) */
  zlibVersion: { parameters: [], result: "pointer" },
  /** int inflateInit2_(z_streamp strm, int windowBits, const char *version, int stream_size) */
  inflateInit2_: {
    parameters: [
      "buffer", // strm: the z_stream, which must not move while in use
      "i32", // windowBits: 15 + 16 for a gzip wrapper
      "pointer", // version: zlibVersion()
      "i32", // stream_size: sizeof(z_stream)
    ],
    result: "i32",
  },
  /** int inflate(z_streamp strm, int flush) */
  inflate: { parameters: ["buffer", "i32"], result: "i32" },
  /** int inflateReset(z_streamp strm) */
  inflateReset: { parameters: ["buffer"], result: "i32" },
  /** int inflateEnd(z_streamp strm) */
  inflateEnd: { parameters: ["buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type _Lib = Deno.DynamicLibrary<typeof _SYMBOLS>;

// z_stream on LP64 (Linux, macOS): pointers and uLong are 8 bytes.
const _Z_STREAM_SIZE = 112;
const _OFF_NEXT_IN = 0;
const _OFF_AVAIL_IN = 8;
const _OFF_NEXT_OUT = 24;
const _OFF_AVAIL_OUT = 32;
const _OFF_MSG = 48;
const _Z_OK = 0;
const _Z_STREAM_END = 1;
const _Z_BUF_ERROR = -5;
const _CODES: Record<number, string> = {
  2: "Z_NEED_DICT",
  [-1]: "Z_ERRNO",
  [-2]: "Z_STREAM_ERROR",
  [-3]: "Z_DATA_ERROR",
  [-4]: "Z_MEM_ERROR",
  [-5]: "Z_BUF_ERROR",
  [-6]: "Z_VERSION_ERROR",
};
const _OUT_SIZE = 1 << 20;

let _lib: _Lib | null | undefined;

function _libz(): _Lib | null {
  // Never on Windows: its LLP64 z_stream layout differs from the offsets above.
  if (Deno.build.os === "windows") return null;
  const names = Deno.build.os === "darwin" ? ["/usr/lib/libz.1.dylib", "libz.1.dylib"] : ["libz.so.1", "libz.so"];
  // Memoized as null too: a missing library is looked for once.
  if (_lib === undefined) _lib = loadOptionalLibrary(_SYMBOLS, { envVar: "SQLBK_LIBZ", names });
  return _lib;
}

function _address(buf: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
}

class _LibzGunzip implements Gunzip {
  readonly backend = "libz";
  #lib: _Lib;
  // Off the V8 heap (larger than 64 bytes), so zlib's pointer back to it stays valid.
  #strm = new Uint8Array(4096);
  #view = new DataView(this.#strm.buffer);
  #out = new Uint8Array(_OUT_SIZE);
  #outBase = _address(this.#out);
  #outPos = 0;
  #sink: GunzipSink;
  #memberEnded = false;
  #sawInput = false;
  #open = true;

  constructor(lib: _Lib, sink: GunzipSink) {
    this.#lib = lib;
    this.#sink = sink;
    // windowBits 15 + 16: a gzip wrapper, checked (CRC-32 and ISIZE).
    const rc = lib.symbols.inflateInit2_(this.#strm, 31, lib.symbols.zlibVersion(), _Z_STREAM_SIZE);
    if (rc !== _Z_OK) throw new Error(`zlib inflateInit2 failed (${rc})`);
  }

  #error(rc: number): GunzipError {
    const msgPtr = this.#view.getBigUint64(_OFF_MSG, true);
    const text = msgPtr === 0n
      ? "invalid gzip data"
      : new Deno.UnsafePointerView(Deno.UnsafePointer.create(msgPtr)!).getCString();
    return new GunzipError(_CODES[rc] ?? `Z_ERROR_${rc}`, text);
  }

  async push(input: Uint8Array): Promise<void> {
    if (!this.#open) throw new Error("gunzip is closed");
    if (input.length === 0) return;
    this.#sawInput = true;
    const s = this.#lib.symbols;
    const v = this.#view;
    let consumed = 0;
    while (consumed < input.length) {
      if (this.#memberEnded) {
        // Another gzip member follows (as gzip(1) writes for concatenated files).
        if (s.inflateReset(this.#strm) !== _Z_OK) throw new Error("zlib inflateReset failed");
        this.#memberEnded = false;
      }
      const rest = input.subarray(consumed);
      v.setBigUint64(_OFF_NEXT_IN, _address(rest), true);
      v.setUint32(_OFF_AVAIL_IN, rest.length, true);
      v.setBigUint64(_OFF_NEXT_OUT, this.#outBase + BigInt(this.#outPos), true);
      v.setUint32(_OFF_AVAIL_OUT, _OUT_SIZE - this.#outPos, true);
      const rc = s.inflate(this.#strm, 0);
      const availIn = v.getUint32(_OFF_AVAIL_IN, true);
      consumed += rest.length - availIn;
      this.#outPos = _OUT_SIZE - v.getUint32(_OFF_AVAIL_OUT, true);
      if (rc === _Z_STREAM_END) this.#memberEnded = true;
      else if (rc !== _Z_OK && rc !== _Z_BUF_ERROR) throw this.#error(rc);
      if (this.#outPos === _OUT_SIZE) {
        await this.#sink(this.#out);
        this.#outPos = 0;
      } else if (rc === _Z_BUF_ERROR && availIn === rest.length) {
        break; // no progress possible without more input
      }
    }
  }

  async end(): Promise<void> {
    if (this.#outPos > 0) {
      await this.#sink(this.#out.subarray(0, this.#outPos));
      this.#outPos = 0;
    }
    if (!this.#memberEnded || !this.#sawInput) {
      throw new GunzipError("Z_BUF_ERROR", "unexpected end of file");
    }
  }

  dispose(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#lib.symbols.inflateEnd(this.#strm);
  }
}

class _NodeGunzip implements Gunzip {
  readonly backend = "node:zlib";
  #z = zlib.createGunzip({ chunkSize: _OUT_SIZE });
  #sink: GunzipSink;
  #chain: Promise<void> = Promise.resolve();
  #error: Error | null = null;
  #ended: Promise<void>;

  constructor(sink: GunzipSink) {
    this.#sink = sink;
    this.#z.on("data", (chunk: Uint8Array) => {
      this.#chain = this.#chain.then(() => this.#sink(chunk));
      this.#chain.catch((err) => (this.#error ??= err));
    });
    this.#ended = new Promise((resolve, reject) => {
      this.#z.on("end", resolve);
      this.#z.on("error", (err: Error) => {
        this.#error ??= err;
        reject(err);
      });
    });
    this.#ended.catch(() => {});
  }

  async push(input: Uint8Array): Promise<void> {
    if (this.#error) throw this.#error;
    await new Promise<void>((resolve, reject) => this.#z.write(input, (err) => err ? reject(err) : resolve()));
    await this.#chain;
    if (this.#error) throw this.#error;
  }

  async end(): Promise<void> {
    if (this.#error) throw this.#error;
    this.#z.end();
    await this.#ended;
    await this.#chain;
    if (this.#error) throw this.#error;
  }

  dispose(): void {
    this.#z.destroy();
  }
}

/**
 * Starts a gunzip whose output goes to `sink`, with `backend` (default:
 * {@link gunzipBackend}).
 *
 * @example
 * ```ts
 * const out = await Deno.open("app.db", { write: true, createNew: true });
 * const gz = openGunzip(async (block) => {
 *   for (let off = 0; off < block.length;) off += await out.write(block.subarray(off));
 * });
 * await gz.push(await Deno.readFile("app.bck.gz"));
 * await gz.end();
 * gz.dispose();
 * ```
 */
export function openGunzip(sink: GunzipSink, backend: "libz" | "node:zlib" = gunzipBackend()): Gunzip {
  if (backend === "node:zlib") return new _NodeGunzip(sink);
  const lib = _libz();
  if (!lib) throw new Error("libz cannot be loaded");
  return new _LibzGunzip(lib, sink);
}

/**
 * The implementation {@link openGunzip} uses by default: `libz` when it loads.
 *
 * @example
 * ```ts
 * console.log(`gunzip runs in ${gunzipBackend()}`);
 * ```
 */
export function gunzipBackend(): "libz" | "node:zlib" {
  return _libz() ? "libz" : "node:zlib";
}
