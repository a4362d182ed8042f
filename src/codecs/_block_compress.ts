/**
 * Compression on every core, shared by the codecs: the input is read block by block into
 * SharedArrayBuffer slots, Workers ({@link ./_compress_worker.ts}) compress the blocks in
 * parallel, and the results are written in order while their bytes are hashed (SHA-256).
 * A codec adds only its framing: gzip a header, a CRC-32 over the input and a trailer;
 * zstd nothing (each block is a frame).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { writeAll } from "../fs.ts";

/** Options every compressor takes. */
export interface CompressOptions {
  /** The codec's level (ranges in `LEVELS`). Default: the codec's default, gzip 6 and zstd 3. */
  level?: number;
  /** Worker threads compressing blocks. Default: the number of cores, at most 8. */
  workers?: number;
  /** Input block size in bytes. Default: the codec's (gzip 1 MiB, zstd 4 MiB). */
  blockSize?: number;
  /** Stops compression between blocks; the promise rejects with the signal's reason. Default: none. */
  signal?: AbortSignal;
  /** Called after each block with input bytes read so far and the input size. Default: none. */
  onProgress?: (readBytes: number, totalBytes: number) => void;
  /**
   * Flush written data to disk (fdatasync) every this many output bytes, so the final
   * fsync is short and other processes' fsyncs (an app committing) never queue behind
   * hundreds of megabytes. 0 disables. Default 16 MiB.
   */
  syncEveryBytes?: number;
}

/** What a compressor wrote. */
export interface CompressResult {
  /** Bytes read from the input. */
  inputBytes: number;
  /** Bytes written: the size of the archive. */
  outputBytes: number;
  /** SHA-256 of the bytes written, lowercase hex. */
  sha256: string;
}

/** A codec's framing around the compressed blocks. */
export interface BlockFraming {
  /** The worker's codec. */
  codec: "gzip" | "zstd";
  /** The level, already validated. */
  level: number;
  /** The default block size. */
  blockSize: number;
  /** Bytes written before the first block. */
  header?: Uint8Array;
  /** Sees each input block, in order (gzip's CRC-32). */
  onInput?: (block: Uint8Array) => void;
  /** Bytes written after the last block, given the input size. */
  trailer?: (inputBytes: number) => Uint8Array;
}

/** The number of compression workers by default: the cores, at most 8. */
export function defaultWorkers(): number {
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
 * Workers compressing blocks held in SharedArrayBuffer slots: slot `i` has an input area
 * the main thread reads the file into and an output area the worker writes into. Nothing
 * is allocated per block on the main thread, which keeps memory flat whatever the size.
 */
class _Pool {
  readonly slots: number;
  #codec: BlockFraming["codec"];
  #workers: Worker[] = [];
  #inputs: Uint8Array[] = [];
  #outputs: Uint8Array[] = [];
  #pending = new Map<number, _Pending>();
  #next = 0;
  #failed: Error | null = null;

  constructor(codec: BlockFraming["codec"], count: number, blockSize: number) {
    this.#codec = codec;
    this.slots = count * 2;
    // Above deflate's and zstd's worst-case bounds (zstd: n + n/256 + 64 KiB at most).
    const outSize = blockSize + (blockSize >> 7) + (128 << 10);
    for (let i = 0; i < this.slots; i++) {
      this.#inputs.push(new Uint8Array(new SharedArrayBuffer(blockSize)));
      this.#outputs.push(new Uint8Array(new SharedArrayBuffer(outSize)));
    }
    for (let i = 0; i < count; i++) {
      const worker = new Worker(new URL("./_compress_worker.ts", import.meta.url).href, { type: "module" });
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

  /** Compresses the first `length` bytes of block `id`'s input slot; resolves to a view of its output slot. */
  compress(id: number, length: number, level: number, last: boolean): Promise<Uint8Array> {
    if (this.#failed) return Promise.reject(this.#failed);
    const slot = id % this.slots;
    const worker = this.#workers[this.#next++ % this.#workers.length];
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({
        id,
        codec: this.#codec,
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

/** Options for {@link compressBlocks}: the codec's framing, and the {@link CompressOptions}. */
export interface BlockCompressOptions extends CompressOptions {
  /** The codec's framing around the blocks (level and block size already chosen). Required: no default. */
  framing: BlockFraming;
}

/**
 * Compresses the file at `inputPath` into `output` (an open file, written from its
 * current position) with `options.framing`, hashing the compressed bytes with SHA-256.
 * Every read and write error is thrown; the caller fsyncs and closes `output`.
 *
 * @example
 * ```ts
 * const out = await Deno.open("app.db.zst", { write: true, createNew: true });
 * await compressBlocks("app.db", out, { framing: { codec: "zstd", level: 3, blockSize: 4 << 20 } });
 * out.close();
 * ```
 */
export async function compressBlocks(
  inputPath: string,
  output: Deno.FsFile,
  options: BlockCompressOptions,
): Promise<CompressResult> {
  const { framing } = options;
  const blockSize = options.blockSize ?? framing.blockSize;
  const workers = options.workers ?? defaultWorkers();
  const signal = options.signal;
  signal?.throwIfAborted();

  const input = await Deno.open(inputPath, { read: true });
  const pool = new _Pool(framing.codec, workers, blockSize);
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
    if (framing.header) await emit(framing.header);
    let readBytes = 0;
    let written = 0;
    const drainOne = async () => {
      await emit(await inFlight.shift()!);
      written++;
      options.onProgress?.(Math.min(readBytes, written * blockSize), totalBytes);
    };
    // Block `id` is read into slot id % slots; a slot is reused only after the block
    // that held it was written out, which the in-order queue below guarantees.
    let id = 0;
    let length = await readInto(input, pool.input(id));
    for (;;) {
      signal?.throwIfAborted();
      const block = pool.input(id).subarray(0, length);
      framing.onInput?.(block);
      readBytes += length;
      // Read ahead one block to know whether this one is the last.
      if (inFlight.length + 1 >= pool.slots) await drainOne();
      const nextLength = length === blockSize ? await readInto(input, pool.input(id + 1)) : 0;
      // An empty input still makes one (empty) block: a valid, empty gzip member or zstd frame.
      inFlight.push(pool.compress(id, length, framing.level, nextLength === 0));
      if (nextLength === 0) break;
      id++;
      length = nextLength;
      while (inFlight.length >= pool.slots - 1) await drainOne();
    }
    while (inFlight.length > 0) {
      signal?.throwIfAborted();
      await emit(await inFlight.shift()!);
    }
    options.onProgress?.(readBytes, totalBytes);
    if (framing.trailer) await emit(framing.trailer(readBytes));
    return { inputBytes: readBytes, outputBytes, sha256: hash.digest("hex") };
  } finally {
    for (const pending of inFlight) pending.catch(() => {}); // abandoned after an error
    pool.close();
    input.close();
  }
}

/** Fills `buf` from `file` (short only at end of file); returns the bytes read. */
export async function readInto(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buf.byteLength) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}
