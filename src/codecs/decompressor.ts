/**
 * The one interface every streaming decompressor implements (gzip: {@link ./gunzip.ts},
 * zstd: {@link ./zstd.ts}), and the error they raise for corrupt or truncated data.
 *
 * @module
 */

/** Receives each block of output; the block may be reused after the returned promise settles. */
export type DecompressSink = (block: Uint8Array) => void | Promise<void>;

/** A decompressor fed block by block. */
export interface Decompressor {
  /** Which implementation runs it (`libz`, `node:zlib`). */
  readonly backend: string;
  /** Feeds input; resolves when it has been decompressed and its output handed to the sink. */
  push(input: Uint8Array): Promise<void>;
  /** Ends the input; rejects with a {@link DecompressError} when the data is truncated. */
  end(): Promise<void>;
  /** Frees native state (safe to call twice, and after a failure). */
  dispose(): void;
}

/**
 * Corrupt or truncated compressed data. `code` names the codec's condition: `Z_*` as
 * zlib's (gzip), `ZSTD_*` for zstd.
 *
 * @example
 * ```ts
 * const err = new DecompressError("ZSTD_TRUNCATED", "unexpected end of file");
 * err.code; // "ZSTD_TRUNCATED"
 * ```
 */
export class DecompressError extends Error {
  /** Always `"DecompressError"` (or a subclass's name). */
  override name = "DecompressError";
  /** e.g. `Z_DATA_ERROR`, `Z_BUF_ERROR`, `ZSTD_DATA_ERROR`, `ZSTD_TRUNCATED`. */
  readonly code: string;
  /**
   * Makes the error.
   * @param code the condition, e.g. `ZSTD_DATA_ERROR`
   * @param message what is wrong, and where
   * @param options the underlying error
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
