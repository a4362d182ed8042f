/**
 * Gzip compression on every core.
 *
 * The input is split into blocks deflated in parallel Workers; each block but the last
 * ends with a sync flush, so the blocks join into one deflate stream and the output is a
 * single, standard gzip member (readable by gzip, pigz, Go, Python, browsers'
 * DecompressionStream). The CRC-32 is computed on the main thread.
 *
 * @module
 */

import zlib from "node:zlib";
import { compressBlocks, type CompressOptions, type CompressResult } from "./_block_compress.ts";
import { checkLevel } from "./levels.ts";

/** Options for {@link gzipFile}: level 1 (fastest) to 9 (smallest), default 6 as `gzip -6`; blocks of 1 MiB. */
export type GzipOptions = CompressOptions;

/** What {@link gzipFile} wrote. */
export type GzipResult = CompressResult;

const _HEADER = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]); // no name, no mtime, OS unknown

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
  const level = checkLevel("gzip", options.level);
  let crc = 0;
  return await compressBlocks(inputPath, output, {
    ...options,
    framing: {
      codec: "gzip",
      level,
      blockSize: 1 << 20,
      header: _HEADER,
      onInput: (block) => (crc = zlib.crc32(block, crc)),
      trailer: (inputBytes) => {
        const trailer = new Uint8Array(8);
        const view = new DataView(trailer.buffer);
        view.setUint32(0, crc >>> 0, true);
        view.setUint32(4, inputBytes % 2 ** 32, true);
        return trailer;
      },
    },
  });
}
