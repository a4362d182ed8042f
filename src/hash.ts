/**
 * SHA-256 of a file, for sidecars and checks.
 *
 * @module
 */

import { createHash } from "node:crypto";

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
