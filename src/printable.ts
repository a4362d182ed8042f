/**
 * Text that came from the network or from file names, made safe to print: control
 * characters (C0, DEL, C1), the BiDi controls (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069) and the line and paragraph separators (U+2028, U+2029) could move the
 * cursor, recolour the terminal, reorder what a line shows or start a forged `error:` line.
 * {@link printable} escapes them for a terminal (`\x1b`, `\u202e`); {@link safeJson}
 * escapes the ones `JSON.stringify` leaves raw, as JSON `\u` escapes that decode to the
 * same string, so the data stays exact.
 *
 * @module
 */

/** Every character printed escaped. */
// deno-lint-ignore no-control-regex
const _UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What `JSON.stringify` leaves raw of {@link _UNSAFE} (it escapes C0 itself). */
const _JSON_RAW = /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const _hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, "0");

/**
 * Text made safe for one line on a terminal: control characters shown as `\xNN`, BiDi
 * controls and line/paragraph separators as `\uNNNN`; at most `max` characters (then
 * `...`).
 *
 * @example
 * ```ts
 * printable("evil\x1b[2Jtext\n"); // "evil\\x1b[2Jtext\\x0a"
 * printable("gpj.\u202eexe", Infinity); // "gpj.\\u202eexe"
 * ```
 */
export function printable(text: string, max = 300): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  return cut.replace(_UNSAFE, (c) => c.charCodeAt(0) <= 0xff ? `\\x${_hex(c, 2)}` : `\\u${_hex(c, 4)}`);
}

/**
 * `JSON.stringify(value)` on one line with no character a terminal acts on: DEL, C1, BiDi
 * controls and U+2028/U+2029 become `\u` escapes too (they only occur inside strings, and
 * decode to the same characters, so `JSON.parse` gives back exactly `value`).
 *
 * @example
 * ```ts
 * safeJson({ file: "a\u202eb" }); // '{"file":"a\\u202eb"}'
 * ```
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(_JSON_RAW, (c) => `\\u${_hex(c, 4)}`);
}
