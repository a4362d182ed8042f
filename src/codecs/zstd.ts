/**
 * zstd on every core, and a streaming, strict zstd reader.
 *
 * Compression: each 4 MiB block of input becomes one independent zstd frame (with a
 * content checksum), compressed in parallel Workers; the frames concatenate into a file
 * any `zstd -d` reads.
 *
 * Decompression walks the frame structure itself as the bytes arrive (magic, frame
 * header, block headers, checksum; only header bytes are kept) and streams the frame
 * bytes through node:zlib's zstd decoder handle into one reused output buffer. Walking
 * the frames is what makes it strict: node:zlib's zstd accepts a truncated frame and
 * trailing garbage without an error, and its stream reports corrupt data outside any
 * handler. Frames of any size are read with flat memory; only on a runtime without the
 * handle are frames decoded whole, then at most {@link ZSTD_MAX_FRAME} bytes each.
 *
 * @module
 */

import zlib from "node:zlib";
import { compressBlocks, type CompressOptions, type CompressResult } from "./_block_compress.ts";
import { DecompressError, type Decompressor, type DecompressSink } from "./decompressor.ts";
import { checkLevel } from "./levels.ts";
import { type HandleState, nativeHandle } from "./_native_handle.ts";

/** The largest zstd frame read when frames must be decoded whole (no decoder handle): 64 MiB. */
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
    ...options,
    framing: {
      codec: "zstd",
      level: checkLevel("zstd", options.level),
      blockSize,
    },
  });
}

const _ZSTD_MAGIC = 0xfd2fb528;
const _MAX_BLOCK = 128 << 10;
const _DID_BYTES = [0, 1, 2, 4];
const _FCS_BYTES = [0, 2, 4, 8];
const _OUT_SIZE = 1 << 20;

/**
 * Walks the zstd frame structure as bytes arrive, keeping only the few header bytes it
 * needs: frame magic, frame header, block headers, checksum, skippable frames' sizes.
 * Throws a DecompressError where the structure breaks.
 */
class _FrameWalker {
  /** Header bytes being collected (magic, frame header, block header). */
  #head = new Uint8Array(18);
  #headLen = 0;
  #need = 4;
  #stage: "magic" | "skip-size" | "skip" | "fhd" | "header" | "block" | "content" | "checksum" = "magic";
  /** Bytes left in a `skip`, `header`, `content` or `checksum` stage. */
  #left = 0;
  #checksum = false;
  #last = false;
  #offset = 0;
  frames = 0;

  /** Whether the input so far ends exactly between frames. */
  get atBoundary(): boolean {
    return this.#stage === "magic" && this.#headLen === 0;
  }

  #corrupt(what: string, at: number): DecompressError {
    return new DecompressError("ZSTD_DATA_ERROR", `${what} at byte ${at}`);
  }

  /** Validates `chunk`; returns the offsets in it just past the end of each frame. */
  scan(chunk: Uint8Array): number[] {
    const ends: number[] = [];
    let i = 0;
    const cut = (end: number) => ends.push(end);
    while (i < chunk.length) {
      const at = this.#offset + i;
      if (
        this.#stage === "skip" || this.#stage === "header" || this.#stage === "content" || this.#stage === "checksum"
      ) {
        const n = Math.min(this.#left, chunk.length - i);
        i += n;
        this.#left -= n;
        if (this.#left > 0) break;
        if (this.#stage === "skip") {
          cut(i);
          this.#stage = "magic";
        } else if (this.#stage === "header") this.#stage = "block";
        else if (this.#stage === "content" && !this.#last) this.#stage = "block";
        else if (this.#stage === "content" && this.#checksum) [this.#stage, this.#left] = ["checksum", 4];
        else {
          this.frames++;
          cut(i);
          this.#stage = "magic";
        }
        if (this.#stage === "checksum") continue;
        this.#need = this.#stage === "magic" ? 4 : 3;
        continue;
      }
      // Collect header bytes.
      this.#head[this.#headLen++] = chunk[i++];
      if (this.#headLen < this.#need) continue;
      const h = this.#head;
      this.#headLen = 0;
      if (this.#stage === "magic") {
        const magic = (h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24)) >>> 0;
        if ((magic & 0xfffffff0) === 0x184d2a50) [this.#stage, this.#need] = ["skip-size", 4];
        else if (magic === _ZSTD_MAGIC) [this.#stage, this.#need] = ["fhd", 1];
        else throw this.#corrupt("not a zstd frame", at - 3);
      } else if (this.#stage === "skip-size") {
        this.#left = (h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24)) >>> 0;
        this.#stage = "skip";
        if (this.#left === 0) {
          cut(i);
          [this.#stage, this.#need] = ["magic", 4];
        }
      } else if (this.#stage === "fhd") {
        const fhd = h[0];
        if (fhd & 0x08) throw this.#corrupt("a zstd frame header with the reserved bit set", at);
        const single = (fhd >> 5) & 1;
        const fcs = fhd >> 6;
        this.#checksum = ((fhd >> 2) & 1) === 1;
        this.#last = false;
        this.#left = (single ? 0 : 1) + _DID_BYTES[fhd & 3] + (fcs === 0 ? single : _FCS_BYTES[fcs]);
        this.#stage = this.#left > 0 ? "header" : "block";
        this.#need = 3;
      } else { // a block header
        const bh = h[0] | (h[1] << 8) | (h[2] << 16);
        const type = (bh >> 1) & 3;
        const size = bh >>> 3;
        if (type === 3) throw this.#corrupt("a zstd block of the reserved type", at - 2);
        if (size > _MAX_BLOCK) throw this.#corrupt("a zstd block above 128 KiB", at - 2);
        this.#last = (bh & 1) === 1;
        this.#left = type === 1 ? 1 : size;
        this.#stage = "content";
        if (this.#left === 0) {
          // An empty block: the stage ends at once.
          if (!this.#last) this.#stage = "block";
          else if (this.#checksum) [this.#stage, this.#left] = ["checksum", 4];
          else {
            this.frames++;
            cut(i);
            [this.#stage, this.#need] = ["magic", 4];
          }
        }
      }
    }
    this.#offset += chunk.length;
    return ends;
  }
}

class _Unzstd implements Decompressor {
  readonly backend = "node:zlib";
  #sink: DecompressSink;
  #walker = new _FrameWalker();
  #stream = zlib.createZstdDecompress();
  #native: HandleState | null;
  #out = new Uint8Array(_OUT_SIZE);
  #outPos = 0;
  /** Without a reusable handle: the current frame's bytes, decoded whole when it ends. */
  #frame: Uint8Array[] | null = null;
  #frameBytes = 0;
  #open = true;

  constructor(sink: DecompressSink, wholeFrames: boolean) {
    this.#sink = sink;
    this.#native = wholeFrames ? null : nativeHandle(this.#stream);
    if (!this.#native) this.#frame = [];
  }

  #decodeError(err: unknown): DecompressError {
    return new DecompressError("ZSTD_DATA_ERROR", `${(err as Error)?.message ?? err}`, { cause: err });
  }

  /** Streams `bytes` through the handle into the output buffer, handing it on whenever it fills. */
  async #decode(bytes: Uint8Array): Promise<void> {
    const { handle, state } = this.#native!;
    let inOff = 0;
    for (;;) {
      const room = _OUT_SIZE - this.#outPos;
      try {
        handle.writeSync(0, bytes, inOff, bytes.length - inOff, this.#out, this.#outPos, room);
      } catch (err) {
        throw this.#decodeError(err);
      }
      const [availOut, availIn] = state;
      this.#outPos += room - availOut;
      inOff = bytes.length - availIn;
      if (this.#outPos === _OUT_SIZE) {
        await this.#sink(this.#out);
        this.#outPos = 0;
        continue; // the decoder may hold more output
      }
      if (availIn === 0) return;
    }
  }

  /** The fallback: decodes a whole frame at once (at most {@link ZSTD_MAX_FRAME}). */
  async #decodeWhole(bytes: Uint8Array, frameEnd: boolean): Promise<void> {
    this.#frame!.push(bytes.slice());
    this.#frameBytes += bytes.length;
    if (this.#frameBytes > ZSTD_MAX_FRAME) {
      throw new DecompressError("ZSTD_DATA_ERROR", "a zstd frame above 64 MiB (this runtime decodes whole frames)");
    }
    if (!frameEnd) return;
    const frame = new Uint8Array(this.#frameBytes);
    let off = 0;
    for (const part of this.#frame!) {
      frame.set(part, off);
      off += part.length;
    }
    this.#frame = [];
    this.#frameBytes = 0;
    let out: Uint8Array;
    try {
      out = zlib.zstdDecompressSync(frame, { maxOutputLength: ZSTD_MAX_FRAME });
    } catch (err) {
      throw this.#decodeError(err);
    }
    await this.#sink(out);
  }

  async push(input: Uint8Array): Promise<void> {
    if (!this.#open) throw new Error("zstd reader is closed");
    const ends = this.#walker.scan(input); // throws before any byte of a broken structure is decoded
    if (!this.#frame) return await this.#decode(input);
    let start = 0;
    for (const end of ends) {
      await this.#decodeWhole(input.subarray(start, end), true);
      start = end;
    }
    if (start < input.length) await this.#decodeWhole(input.subarray(start), false);
  }

  async end(): Promise<void> {
    if (!this.#walker.atBoundary) {
      throw new DecompressError("ZSTD_TRUNCATED", "unexpected end of file inside a zstd frame");
    }
    if (this.#walker.frames === 0) throw new DecompressError("ZSTD_TRUNCATED", "no zstd frame");
    if (this.#outPos > 0) {
      await this.#sink(this.#out.subarray(0, this.#outPos));
      this.#outPos = 0;
    }
  }

  dispose(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.#stream.close();
    } catch { /* already closed */ }
  }
}

/**
 * Starts a strict, streaming zstd reader whose output goes to `sink`. `wholeFrames`
 * (default false) decodes each frame whole, as on a runtime without node:zlib's decoder
 * handle (frames of at most {@link ZSTD_MAX_FRAME}). Truncation, trailing garbage, a bad checksum or a broken frame structure reject
 * with a {@link DecompressError}.
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
export function openUnzstd(sink: DecompressSink, options: { wholeFrames?: boolean } = {}): Decompressor {
  return new _Unzstd(sink, options.wholeFrames ?? false);
}
