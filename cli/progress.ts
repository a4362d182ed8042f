/**
 * A one-line progress bar on standard error, drawn only when it is a terminal.
 *
 * @module
 */

import { printable } from "../src/printable.ts";

const _enc = new TextEncoder();

export { formatBytes } from "../src/format.ts";

/**
 * Redraws one status line on stderr at most every 100 ms; `done()` clears it.
 *
 * @example
 * ```ts
 * const bar = new ProgressBar(Deno.stderr.isTerminal());
 * bar.update(0.5, "app snapshot");
 * bar.done();
 * ```
 */
export class ProgressBar {
  #enabled: boolean;
  #last = 0;
  #drawn = false;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
  }

  /** Draws `fraction` (0..1) with a label and optional detail. */
  update(fraction: number, label: string, detail = ""): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#last < 100 && fraction < 1) return;
    this.#last = now;
    const width = 30;
    const f = Math.max(0, Math.min(1, fraction));
    const filled = Math.round(f * width);
    const line =
      `${printable(label, 60)} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${
        (f * 100).toFixed(0).padStart(3)
      }%` +
      (detail ? ` ${detail}` : "");
    this.#write(`\r\x1b[2K${line}`);
    this.#drawn = true;
  }

  /** Clears the line. */
  done(): void {
    if (this.#enabled && this.#drawn) this.#write("\r\x1b[2K");
    this.#drawn = false;
  }

  #write(text: string): void {
    try {
      Deno.stderr.writeSync(_enc.encode(text));
    } catch { /* a closed stderr never breaks the work */ }
  }
}
