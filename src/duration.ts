/**
 * Durations in Go's syntax (`24h`, `1h30m`, `10ms`, `0s`), as the Go tool and config files
 * use them, parsed to milliseconds and formatted back in Go's canonical form (`24h0m0s`).
 *
 * @module
 */

const _UNITS_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  "µs": 1_000n, // U+00B5 micro sign
  "μs": 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const _MAX_NS = (1n << 63n) - 1n;

/** Raised for text that is not a Go duration. */
export class DurationError extends Error {
  override name = "DurationError";
}

/**
 * Parses a Go duration into nanoseconds (exact, as a bigint).
 *
 * @example
 * ```ts
 * parseDurationNs("1h30m"); // 5400000000000n
 * ```
 */
export function parseDurationNs(text: string): bigint {
  const orig = text;
  let s = text.trim();
  if (s !== text || s === "") {
    throw new DurationError(`Invalid duration "${orig}": expected e.g. "10ms", "1h30m" or "0s"`);
  }
  let negative = false;
  if (s[0] === "-" || s[0] === "+") {
    negative = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") throw new DurationError(`Invalid duration "${orig}": expected e.g. "10ms", "1h30m" or "0s"`);
  let total = 0n;
  const re = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (s !== "") {
    const m = re.exec(s);
    if (!m || (m[1] === "" && (m[2] === undefined || m[2] === ""))) {
      const hint = /^\d+(\.\d+)?d/.test(s) ? ` (days are not a unit: write hours, e.g. "24h")` : "";
      throw new DurationError(
        `Invalid duration "${orig}": expected a number and a unit (ns, us, ms, s, m, h), e.g. "10ms" or "1h30m"${hint}`,
      );
    }
    const unit = _UNITS_NS[m[3]];
    const whole = BigInt(m[1] || "0") * unit;
    let frac = 0n;
    if (m[2]) {
      const digits = m[2].slice(0, 18);
      frac = (BigInt(digits) * unit) / 10n ** BigInt(digits.length);
    }
    total += whole + frac;
    if (total > _MAX_NS) throw new DurationError(`Invalid duration "${orig}": too large`);
    s = s.slice(m[0].length);
  }
  return negative ? -total : total;
}

/**
 * Parses a Go duration into milliseconds (may be fractional below 1 ms).
 *
 * @example
 * ```ts
 * parseDuration("10ms"); // 10
 * parseDuration("24h"); // 86400000
 * ```
 */
export function parseDuration(text: string): number {
  return Number(parseDurationNs(text)) / 1e6;
}

/**
 * Formats nanoseconds as Go's `time.Duration.String()` does.
 *
 * @example
 * ```ts
 * formatDurationNs(86_400_000_000_000n); // "24h0m0s"
 * ```
 */
export function formatDurationNs(ns: bigint): string {
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    // Below a second: one unit, with a fraction.
    let unit: string, scale: bigint;
    if (u < 1_000n) [unit, scale] = ["ns", 1n];
    else if (u < 1_000_000n) [unit, scale] = ["µs", 1_000n];
    else [unit, scale] = ["ms", 1_000_000n];
    out = _fraction(u, scale) + unit;
  } else {
    const h = u / 3_600_000_000_000n;
    u -= h * 3_600_000_000_000n;
    const m = u / 60_000_000_000n;
    u -= m * 60_000_000_000n;
    out = _fraction(u, 1_000_000_000n) + "s";
    if (h > 0n || m > 0n) out = `${m}m${out}`;
    if (h > 0n) out = `${h}h${out}`;
  }
  return neg ? `-${out}` : out;
}

function _fraction(value: bigint, scale: bigint): string {
  const whole = value / scale;
  const rest = value % scale;
  if (rest === 0n) return `${whole}`;
  const width = scale.toString().length - 1;
  const digits = rest.toString().padStart(width, "0").replace(/0+$/, "");
  return `${whole}.${digits}`;
}

/**
 * Formats milliseconds in Go's canonical duration text.
 *
 * @example
 * ```ts
 * formatDuration(90 * 60_000); // "1h30m0s"
 * formatDuration(500); // "500ms"
 * ```
 */
export function formatDuration(ms: number): string {
  return formatDurationNs(BigInt(Math.round(ms * 1e6)));
}
