/**
 * The codecs' compression levels: ranges and defaults, in one table the config, the CLI
 * and the compressors share.
 *
 * @module
 */

/** A compression codec sqlbk writes and reads. */
export type Codec = "gzip" | "zstd";

/** Every codec, the default first. */
export const CODEC_NAMES: readonly Codec[] = ["gzip", "zstd"];

/** The archive extension of each codec, after `.bck`. */
export const CODEC_EXTENSIONS: Readonly<Record<Codec, string>> = { gzip: ".gz", zstd: ".zst" };

/** Level range and default of each codec. */
export const LEVELS: Readonly<Record<Codec, { min: number; max: number; default: number }>> = {
  /** deflate: 1 fastest, 9 smallest; 6 as `gzip -6`. */
  gzip: { min: 1, max: 9, default: 6 },
  /** zstd: 1 fastest (about 350 MB/s a core) to 19 smallest; 3 by default, as `zstd`'s own, smaller than gzip -6. */
  zstd: { min: 1, max: 19, default: 3 },
};

/**
 * The level to use for `codec`: `level` when it is in range, the codec's default when it
 * is undefined; throws a RangeError naming the range otherwise.
 *
 * @example
 * ```ts
 * checkLevel("zstd", undefined); // 3
 * checkLevel("gzip", 9); // 9
 * ```
 */
export function checkLevel(codec: Codec, level: number | undefined): number {
  const range = LEVELS[codec];
  if (level === undefined) return range.default;
  if (!Number.isInteger(level) || level < range.min || level > range.max) {
    throw new RangeError(
      `Invalid ${codec} compression level ${level}: expected a whole number from ${range.min} to ${range.max}`,
    );
  }
  return level;
}
