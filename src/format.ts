/**
 * Formatting numbers for people: sizes in binary units.
 *
 * @module
 */

/**
 * Formats a byte count for people: `1.5 MiB`.
 *
 * @example
 * ```ts
 * formatBytes(1536 * 1024); // "1.5 MiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[i]}`;
}
