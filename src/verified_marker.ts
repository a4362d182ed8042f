/**
 * The mark of a copy `sqlbk pull` verified: the checksum file it writes beside the copy,
 * `<file>.sha256`, in `sha256sum` format plus one comment line naming the check that ran:
 *
 * ```text
 * 3f5c…e1  app-2025-07-01T10-30-00Z-vacuum.bck.gz
 * # verified by sqlbk pull: check=full
 * ```
 *
 * `sha256sum -c` ignores the comment line. A checksum file without it (the server's
 * `.<file>.sha256`, or one copied by hand) says what the file's bytes should be, not that
 * anything checked them, so it never marks a copy verified.
 *
 * @module
 */

import { join } from "node:path";
import type { CheckLevel } from "./integrity.ts";
import { parseSidecar } from "./verify.ts";

const _PREFIX = "# verified by sqlbk pull: check=";
const _LINE = /^# verified by sqlbk pull: check=(full|quick)\s*$/m;

/** What a pull's checksum file says. */
export interface VerifiedMarker {
  /** SHA-256 of the copy when it was verified, lowercase hex. */
  sha256: string;
  /** The check it passed. */
  check: CheckLevel;
}

/**
 * The text of the checksum file a pull writes after verifying `file`: the inverse of
 * {@link parseVerifiedMarker}.
 *
 * @example
 * ```ts
 * formatVerifiedMarker("app-2025-07-01T10-30-00Z-vacuum.bck.gz", { sha256: "ab".repeat(32), check: "full" });
 * ```
 */
export function formatVerifiedMarker(file: string, marker: VerifiedMarker): string {
  const { sha256, check } = marker;
  return `${sha256}  ${file}\n${_PREFIX}${check}\n`;
}

/**
 * Parses a checksum file's text; null when it is not a pull's mark (no comment line, or
 * malformed).
 *
 * @example
 * ```ts
 * parseVerifiedMarker(`${"ab".repeat(32)}  app.bck.gz\n# verified by sqlbk pull: check=quick\n`, "app.bck.gz");
 * // { sha256: "abab…", check: "quick" }
 * ```
 */
export function parseVerifiedMarker(text: string, file: string): VerifiedMarker | null {
  const m = _LINE.exec(text);
  if (!m) return null;
  try {
    return { sha256: parseSidecar(text, `${file}.sha256`, { expectedName: file }), check: m[1] as CheckLevel };
  } catch {
    return null;
  }
}

/**
 * Reads the pull's mark of `file` in `dir` (`<file>.sha256` only: the hidden
 * `.<file>.sha256` is the server's checksum); null when there is none.
 *
 * @example
 * ```ts
 * const mark = await readVerifiedMarker("/srv/pulled", "app-2025-07-01T10-30-00Z-vacuum.bck.gz");
 * ```
 */
export async function readVerifiedMarker(dir: string, file: string): Promise<VerifiedMarker | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, `${file}.sha256`));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  return parseVerifiedMarker(text, file);
}

/**
 * Whether a copy that passed `had` satisfies a pull asking for `want`.
 *
 * @example
 * ```ts
 * checkCovers("quick", "full"); // false
 * ```
 */
export function checkCovers(had: CheckLevel, want: CheckLevel): boolean {
  return had === "full" || want === "quick";
}
