/**
 * Gzip compression on every core, and streaming decompression.
 *
 * Compression splits the input into blocks and deflates them in parallel Workers; each
 * block but the last ends with a sync flush, so the blocks join into one deflate stream
 * and the output is a single, standard gzip member (readable by gzip, pigz, Go, Python,
 * browsers' DecompressionStream). The CRC-32 is computed on the main thread.
 *
 * @module
 */

import zlib from "node:zlib";
import { createHash } from "node:crypto";
import { ConfigError } from "./errors.ts";
import { writeAll } from "./fs.ts";
import { openGunzip } from "./gunzip.ts";

/** Options for {@link gzipFile}. */
export interface GzipOptions {
  /** Deflate level, 1 (fastest) to 9 (smallest). Default 6, as `gzip -6`. */
  level?: number;
  /** Worker threads compressing blocks. Default: the number of cores, at most 8. */
  workers?: number;
  /** Input block size in bytes. Default 1 MiB. */
  blockSize?: number;
  /** Stops compression between blocks; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called after each block with input bytes read so far and the input size. */
  onProgress?: (readBytes: number, totalBytes: number) => void;
  /**
   * Flush written data to disk (fdatasync) every this many output bytes, so the final
   * fsync is short and other processes' fsyncs (an app committing) never queue behind
   * hundreds of megabytes. 0 disables. Default 16 MiB.
   */
  syncEveryBytes?: number;
}

/** What {@link gzipFile} wrote. */
export interface GzipResult {
  /** Bytes read from the input. */
  inputBytes: number;
  /** Bytes written: the size of the gzip file. */
  outputBytes: number;
  /** SHA-256 of the bytes written, lowercase hex. */
  sha256: string;
}

const _HEADER = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]); // no name, no mtime, OS unknown

function _defaultWorkers(): number {
  const cores = typeof navigator !== "undefined" && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 2;
  return Math.max(1, Math.min(8, cores));
}

interface _Pending {
  resolve: (out: Uint8Array) => void;
  reject: (err: Error) => void;
}

interface _Reply {
  id: number;
  length?: number;
  overflow?: Uint8Array;
  error?: string;
}

/**
 * Workers deflating blocks held in SharedArrayBuffer slots: slot `i` has an input area
 * the main thread reads the file into and an output area the worker writes into. Nothing
 * is allocated per block on the main thread, which keeps memory flat whatever the size.
 */
class _DeflatePool {
  readonly slots: number;
  #workers: Worker[] = [];
  #inputs: Uint8Array[] = [];
  #outputs: Uint8Array[] = [];
  #pending = new Map<number, _Pending>();
  #next = 0;
  #failed: Error | null = null;

  constructor(count: number, blockSize: number) {
    this.slots = count * 2;
    const outSize = blockSize + (blockSize >> 10) + 1024; // above deflate's worst-case bound
    for (let i = 0; i < this.slots; i++) {
      this.#inputs.push(new Uint8Array(new SharedArrayBuffer(blockSize)));
      this.#outputs.push(new Uint8Array(new SharedArrayBuffer(outSize)));
    }
    for (let i = 0; i < count; i++) {
      const worker = new Worker(new URL("./_deflate_worker.ts", import.meta.url).href, { type: "module" });
      worker.onmessage = (event: MessageEvent<_Reply>) => {
        const { id, length, overflow, error } = event.data;
        const pending = this.#pending.get(id);
        if (!pending) return;
        this.#pending.delete(id);
        if (error !== undefined || length === undefined) pending.reject(new Error(`Compression failed: ${error}`));
        else pending.resolve(overflow ?? this.#outputs[id % this.slots].subarray(0, length));
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        this.#fail(new Error(`Compression worker failed: ${event.message}`));
      };
      this.#workers.push(worker);
    }
  }

  /** The input area of the slot block `id` uses. */
  input(id: number): Uint8Array {
    return this.#inputs[id % this.slots];
  }

  #fail(err: Error): void {
    this.#failed = err;
    for (const pending of this.#pending.values()) pending.reject(err);
    this.#pending.clear();
  }

  /** Deflates the first `length` bytes of block `id`'s input slot; resolves to a view of its output slot. */
  deflate(id: number, length: number, level: number, last: boolean): Promise<Uint8Array> {
    if (this.#failed) return Promise.reject(this.#failed);
    const slot = id % this.slots;
    const worker = this.#workers[this.#next++ % this.#workers.length];
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({
        id,
        input: this.#inputs[slot].subarray(0, length),
        output: this.#outputs[slot],
        level,
        last,
      });
    });
  }

  close(): void {
    for (const worker of this.#workers) worker.terminate();
    this.#workers = [];
    this.#fail(new Error("Compression was stopped"));
  }
}

/**
 * Compresses the file at `inputPath` into `output` (an open file, written from its
 * current position) as one gzip member, hashing the compressed bytes with SHA-256.
 * Every read and write error is thrown; the caller fsyncs and closes `output`.
 *
 * @param inputPath the file to compress
 * @param output where the gzip bytes go
 * @param options level (default 6), workers (default: cores), blockSize (default 1 MiB), signal, onProgress
 *
 * @example
 * ```ts
 * const out = await Deno.open("app.db.gz", { write: true, createNew: true });
 * try {
 *   const { sha256 } = await gzipFile("app.db", out, { level: 6 });
 *   await out.sync();
 * } finally {
 *   out.close();
 * }
 * ```
 */
export async function gzipFile(inputPath: string, output: Deno.FsFile, options: GzipOptions = {}): Promise<GzipResult> {
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new RangeError(`Invalid compression level ${level}: expected a whole number from 1 to 9`);
  }
  const blockSize = options.blockSize ?? 1 << 20;
  const workers = options.workers ?? _defaultWorkers();
  const signal = options.signal;
  signal?.throwIfAborted();

  const input = await Deno.open(inputPath, { read: true });
  const pool = new _DeflatePool(workers, blockSize);
  const hash = createHash("sha256");
  let outputBytes = 0;
  const inFlight: Promise<Uint8Array>[] = [];
  const syncEvery = options.syncEveryBytes ?? 16 << 20;
  let unsynced = 0;
  const emit = async (bytes: Uint8Array) => {
    hash.update(bytes);
    await writeAll(output, bytes);
    outputBytes += bytes.byteLength;
    unsynced += bytes.byteLength;
    if (syncEvery > 0 && unsynced >= syncEvery) {
      await output.syncData();
      unsynced = 0;
    }
  };
  try {
    const totalBytes = (await input.stat()).size;
    await emit(_HEADER);
    let crc = 0;
    let readBytes = 0;
    let written = 0;
    // Block `id` is read into slot id % slots; a slot is reused only after the block
    // that held it was written out, which the in-order queue below guarantees.
    let id = 0;
    let length = await _readInto(input, pool.input(id));
    for (;;) {
      signal?.throwIfAborted();
      const block = pool.input(id).subarray(0, length);
      crc = zlib.crc32(block, crc);
      readBytes += length;
      // Read ahead one block to know whether this one is the last.
      if (inFlight.length + 1 >= pool.slots) {
        await emit(await inFlight.shift()!);
        written++;
        options.onProgress?.(Math.min(readBytes, written * blockSize), totalBytes);
      }
      const nextLength = length === blockSize ? await _readInto(input, pool.input(id + 1)) : 0;
      inFlight.push(pool.deflate(id, length, level, nextLength === 0));
      if (nextLength === 0) break;
      id++;
      length = nextLength;
      while (inFlight.length >= pool.slots - 1) {
        await emit(await inFlight.shift()!);
        written++;
        options.onProgress?.(Math.min(readBytes, written * blockSize), totalBytes);
      }
    }
    while (inFlight.length > 0) {
      signal?.throwIfAborted();
      await emit(await inFlight.shift()!);
    }
    options.onProgress?.(readBytes, totalBytes);
    const trailer = new Uint8Array(8);
    const view = new DataView(trailer.buffer);
    view.setUint32(0, crc >>> 0, true);
    view.setUint32(4, readBytes % 2 ** 32, true);
    await emit(trailer);
    return { inputBytes: readBytes, outputBytes, sha256: hash.digest("hex") };
  } finally {
    for (const pending of inFlight) pending.catch(() => {}); // abandoned after an error
    pool.close();
    input.close();
  }
}

/** Fills `buf` from `file` (short only at end of file); returns the bytes read. */
async function _readInto(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buf.byteLength) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/**
 * Decompresses a gzip file (any number of members) into `outputPath`, created new, and
 * returns the SHA-256 of the compressed input. The output is fsynced. Throws on a
 * truncated or corrupt archive.
 *
 * @example
 * ```ts
 * const { sha256, outputBytes } = await gunzipFile("app.bck.gz", "app.db");
 * ```
 */
export async function gunzipFile(
  inputPath: string,
  outputPath: string,
  options: { signal?: AbortSignal } = {},
): Promise<{ sha256: string; inputBytes: number; outputBytes: number }> {
  const hash = createHash("sha256");
  let inputBytes = 0;
  let outputBytes = 0;
  const input = await Deno.open(inputPath, { read: true });
  let output: Deno.FsFile | null = null;
  try {
    output = await Deno.open(outputPath, { write: true, createNew: true });
    const out = output;
    const gunzip = openGunzip(async (block) => {
      await writeAll(out, block);
      outputBytes += block.byteLength;
    });
    try {
      const buf = new Uint8Array(1 << 20);
      for (;;) {
        options.signal?.throwIfAborted();
        const n = await _readInto(input, buf);
        if (n === 0) break;
        const chunk = buf.subarray(0, n);
        hash.update(chunk);
        inputBytes += n;
        await gunzip.push(chunk);
      }
      await gunzip.end();
    } finally {
      gunzip.dispose();
    }
    await out.sync();
  } finally {
    input.close();
    output?.close();
  }
  return { sha256: hash.digest("hex"), inputBytes, outputBytes };
}

/**
 * SHA-256 of a file, lowercase hex.
 *
 * @example
 * ```ts
 * const hex = await sha256File("backups/app-2025-07-01T10-30-00Z-vacuum.bck.gz");
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    file.close();
  }
  return hash.digest("hex");
}

/**
 * Whether a gunzip error means corrupt or truncated data (not an I/O failure): zlib's
 * `Z_*` codes, or its messages for a short or malformed stream.
 *
 * @example
 * ```ts
 * try { await gunzipFile("a.gz", "a.db"); } catch (err) { if (isZlibError(err)) console.error("corrupt"); }
 * ```
 */
export function isZlibError(err: unknown): boolean {
  if (err instanceof ConfigError) return false; // e.g. a bad SQLBK_LIBZ, whatever its text says
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : (err as { message?: unknown } | null)?.message;
  return (typeof code === "string" && (code.startsWith("Z_") || code === "ERR_ZLIB_INITIALIZATION_FAILED")) ||
    /unexpected end of file|incorrect header|invalid/i.test(String(message ?? err));
}
