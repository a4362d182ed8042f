/**
 * Decompressing an archive file into a new file while hashing the archive's bytes.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { writeAll } from "../fs.ts";
import { readInto } from "./_block_compress.ts";
import { type Codec, openDecompressor } from "./codec.ts";
import { DatabaseOutputGuard } from "./database_limit.ts";

/** Options for {@link decompressFile}. */
export interface DecompressFileOptions {
  /** The codec; `"auto"` (the default) goes by the first bytes. */
  codec?: Codec | "auto";
  /** With `"auto"`: the codec the file's name says; other data is rejected as corrupt. */
  expect?: Codec | null;
  /** Cancels between blocks. */
  signal?: AbortSignal;
  /**
   * Whether the output must be a SQLite database: decompression then stops with an error at
   * the first block that is not one, that grows it past the size its header gives, or that
   * would leave too little free space (see `DatabaseOutputGuard`). Default false.
   */
  database?: boolean;
  /** With `database`: the free space to keep on the output's file system, in bytes. Default: the smaller of 256 MiB and 5% of it. */
  freeSpaceMargin?: number;
}

/** What {@link decompressFile} did. */
export interface DecompressFileResult {
  /** SHA-256 of the compressed input, lowercase hex. */
  sha256: string;
  /** Size of the archive. */
  inputBytes: number;
  /** Size of the output written. */
  outputBytes: number;
}

/**
 * Decompresses the archive at `inputPath` into `outputPath` (created new) and returns
 * the SHA-256 of the archive. The output is fsynced. Throws a DecompressError (see
 * `isCorruptData`) on a truncated or corrupt archive.
 *
 * @example
 * ```ts
 * const { sha256, outputBytes } = await decompressFile("app.bck.zst", "app.db");
 * ```
 */
export async function decompressFile(
  inputPath: string,
  outputPath: string,
  options: DecompressFileOptions = {},
): Promise<DecompressFileResult> {
  const hash = createHash("sha256");
  let inputBytes = 0;
  let outputBytes = 0;
  const input = await Deno.open(inputPath, { read: true });
  let output: Deno.FsFile | null = null;
  try {
    output = await Deno.open(outputPath, { write: true, createNew: true });
    const out = output;
    const guard = options.database ? new DatabaseOutputGuard(outputPath, { margin: options.freeSpaceMargin }) : null;
    const decompressor = openDecompressor(options.codec ?? "auto", async (block) => {
      guard?.admit(block); // throws before a byte past the limit is written
      await writeAll(out, block);
      outputBytes += block.byteLength;
    }, { expect: options.expect });
    try {
      const buf = new Uint8Array(1 << 20);
      for (;;) {
        options.signal?.throwIfAborted();
        const n = await readInto(input, buf);
        if (n === 0) break;
        const chunk = buf.subarray(0, n);
        hash.update(chunk);
        inputBytes += n;
        await decompressor.push(chunk);
      }
      await decompressor.end();
    } finally {
      decompressor.dispose();
    }
    await out.sync();
  } finally {
    input.close();
    output?.close();
  }
  return { sha256: hash.digest("hex"), inputBytes, outputBytes };
}

/**
 * Decompresses a gzip file (any number of members) into `outputPath`, created new; see
 * {@link decompressFile}.
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
): Promise<DecompressFileResult> {
  return await decompressFile(inputPath, outputPath, { codec: "gzip", signal: options.signal });
}
