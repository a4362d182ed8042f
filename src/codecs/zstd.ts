/**
 * zstd on every core, and a streaming, strict zstd reader.
 *
 * Compression: each 4 MiB block of input becomes one independent zstd frame (with a
 * content checksum), compressed in parallel Workers; the frames concatenate into a file
 * any `zstd -d` reads.
 *
 * Decompression walks the frame structure itself (magic, frame header, block headers,
 * checksum) and hands each complete frame to node:zlib's `zstdDecompressSync`. Walking
 * the frames is what makes it strict: node:zlib's zstd accepts a truncated frame and
 * trailing garbage without an error, and its stream reports corrupt data outside any
 * handler. A frame may be at most {@link ZSTD_MAX_FRAME} bytes, compressed and
 * decompressed (sqlbk writes 4 MiB frames), which bounds memory on untrusted input.
 *
 * @module
 */

import zlib from "node:zlib";
import { compressBlocks, type CompressOptions, type CompressResult } from "./_block_compress.ts";
import { DecompressError, type Decompressor, type DecompressSink } from "./decompressor.ts";
import { checkLevel } from "./levels.ts";

/** The largest zstd frame read, compressed or decompressed: 64 MiB. */
export const ZSTD_MAX_FRAME = 64 << 20;

/**
 * Compresses the file at `inputPath` into `output` as independent zstd frames of 4 MiB
 * of input each, on every core, hashing the compressed bytes with SHA-256. Every read and
 * write error is thrown; the caller fsyncs and closes `output`.
 *
 * @param inputPath the file to compress
 * @param output where the zstd bytes go
 * @param options level 1-19 (default 3), workers (default: cores), blockSize (default 4 MiB), signal, onProgress
 *
 * @example
 * ```ts
 * const out = await Deno.open("app.db.zst", { write: true, createNew: true });
 * try {
 *   await zstdFile("app.db", out, { level: 3 });
 *   await out.sync();
 * } finally {
 *   out.close();
 * }
 * ```
 */
export async function zstdFile(
  inputPath: string,
  output: Deno.FsFile,
  options: CompressOptions = {},
): Promise<CompressResult> {
  const blockSize = options.blockSize ?? 4 << 20;
  if (blockSize > ZSTD_MAX_FRAME) throw new RangeError(`zstd block size ${blockSize} is above ${ZSTD_MAX_FRAME}`);
  return await compressBlocks(inputPath, output, {
    codec: "zstd",
    level: checkLevel("zstd", options.level),
    blockSize,
  }, options);
}

const _ZSTD_MAGIC = 0xfd2fb528;
const _MAX_BLOCK = 128 << 10;
const _DID_BYTES = [0, 1, 2, 4];
const _FCS_BYTES = [0, 2, 4, 8];

function _u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

class _Unzstd implements Decompressor {
  readonly backend = "node:zlib";
  #sink: DecompressSink;
  #buf = new Uint8Array(1 << 20);
  /** Bytes buffered; the current frame starts at 0. */
  #len = 0;
  /** Bytes before the current frame, for messages. */
  #base = 0;
  /** Parse position in the current frame: 0 until its header is read. */
  #pos = 0;
  #skippable = false;
  #checksum = false;
  #lastBlock = false;
  #frames = 0;
  #open = true;

  constructor(sink: DecompressSink) {
    this.#sink = sink;
  }

  #corrupt(what: string): DecompressError {
    return new DecompressError("ZSTD_DATA_ERROR", `${what} at byte ${this.#base + this.#pos}`);
  }

  /** The length of the current frame once all of it is buffered, else null. */
  #scan(): number | null {
    const b = this.#buf;
    const len = this.#len;
    if (this.#pos === 0) {
      if (len < 4) return null;
      const magic = _u32(b, 0);
      if ((magic & 0xfffffff0) === 0x184d2a50) { // a skippable frame
        if (len < 8) return null;
        this.#skippable = true;
        this.#pos = 8 + _u32(b, 4);
        if (this.#pos > ZSTD_MAX_FRAME) throw this.#corrupt("a skippable frame above 64 MiB");
      } else {
        if (magic !== _ZSTD_MAGIC) throw this.#corrupt("not a zstd frame");
        if (len < 5) return null;
        const fhd = b[4];
        if (fhd & 0x08) throw this.#corrupt("a zstd frame header with the reserved bit set");
        const single = (fhd >> 5) & 1;
        const fcs = fhd >> 6;
        const header = 5 + (single ? 0 : 1) + _DID_BYTES[fhd & 3] + (fcs === 0 ? single : _FCS_BYTES[fcs]);
        if (len < header) return null;
        this.#checksum = ((fhd >> 2) & 1) === 1;
        this.#pos = header;
      }
    }
    if (this.#skippable) return len >= this.#pos ? this.#pos : null;
    while (!this.#lastBlock) {
      if (len < this.#pos + 3) return null;
      const h = b[this.#pos] | (b[this.#pos + 1] << 8) | (b[this.#pos + 2] << 16);
      const type = (h >> 1) & 3;
      const size = h >>> 3;
      if (type === 3) throw this.#corrupt("a zstd block of the reserved type");
      if (size > _MAX_BLOCK) throw this.#corrupt("a zstd block above 128 KiB");
      this.#pos += 3 + (type === 1 ? 1 : size);
      this.#lastBlock = (h & 1) === 1;
      if (this.#pos > ZSTD_MAX_FRAME) throw this.#corrupt("a zstd frame above 64 MiB");
    }
    const end = this.#pos + (this.#checksum ? 4 : 0);
    return len >= end ? end : null;
  }

  async push(input: Uint8Array): Promise<void> {
    if (!this.#open) throw new Error("zstd reader is closed");
    let off = 0;
    while (off < input.length) {
      const room = Math.min(input.length - off, ZSTD_MAX_FRAME + 16 - this.#len);
      if (room <= 0) throw this.#corrupt("a zstd frame above 64 MiB");
      if (this.#buf.length < this.#len + room) {
        const grown = new Uint8Array(Math.min(ZSTD_MAX_FRAME + 16, Math.max(this.#buf.length * 2, this.#len + room)));
        grown.set(this.#buf.subarray(0, this.#len));
        this.#buf = grown;
      }
      this.#buf.set(input.subarray(off, off + room), this.#len);
      this.#len += room;
      off += room;
      for (;;) {
        const end = this.#scan();
        if (end === null) break;
        if (!this.#skippable) {
          let out: Uint8Array;
          try {
            out = zlib.zstdDecompressSync(this.#buf.subarray(0, end), { maxOutputLength: ZSTD_MAX_FRAME });
          } catch (err) {
            throw new DecompressError(
              "ZSTD_DATA_ERROR",
              `${(err as Error).message ?? err} in the zstd frame at byte ${this.#base}`,
              { cause: err },
            );
          }
          await this.#sink(out);
        }
        this.#frames++;
        this.#buf.copyWithin(0, end, this.#len);
        this.#len -= end;
        this.#base += end;
        this.#pos = 0;
        this.#skippable = false;
        this.#lastBlock = false;
      }
    }
  }

  end(): Promise<void> {
    if (this.#len > 0) {
      return Promise.reject(
        new DecompressError("ZSTD_TRUNCATED", `unexpected end of file in the zstd frame at byte ${this.#base}`),
      );
    }
    if (this.#frames === 0) return Promise.reject(new DecompressError("ZSTD_TRUNCATED", "no zstd frame"));
    return Promise.resolve();
  }

  dispose(): void {
    this.#open = false;
    this.#buf = new Uint8Array(0);
    this.#len = 0;
  }
}

/**
 * Starts a strict, streaming zstd reader whose output goes to `sink`, one frame at a
 * time. Truncation, trailing garbage, a bad checksum or a frame above
 * {@link ZSTD_MAX_FRAME} reject with a {@link DecompressError}.
 *
 * @example
 * ```ts
 * const chunks: Uint8Array[] = [];
 * const z = openUnzstd((block) => void chunks.push(block.slice()));
 * await z.push(await Deno.readFile("app.bck.zst"));
 * await z.end();
 * z.dispose();
 * ```
 */
export function openUnzstd(sink: DecompressSink): Decompressor {
  return new _Unzstd(sink);
}
