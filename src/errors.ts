/**
 * Error classes that carry the CLI exit code: 2 for usage and configuration errors,
 * 3 for a backup that failed verification. Any other error exits 1.
 *
 * @module
 */

/** Exit codes of the `sqlbk` CLI. */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** A runtime failure: I/O, SQLite, network. */
  FAILURE: 1,
  /** Bad usage or configuration. */
  USAGE: 2,
  /** A backup failed verification. */
  VERIFY: 3,
} as const;

/**
 * Bad input from the user: a config key, a flag, a path. Exit code 2.
 *
 * @example
 * ```ts
 * throw new ConfigError(`Invalid "strategy" value "fast": expected "online" or "vacuum"`);
 * ```
 */
export class ConfigError extends Error {
  /** Always `"ConfigError"`. */
  override name = "ConfigError";
  /** The CLI exit code for this error: 2. */
  readonly exitCode: number = ExitCode.USAGE;
}

/**
 * A backup that is not sound: bad checksum, corrupt gzip, failed integrity check. Exit code 3.
 *
 * @example
 * ```ts
 * throw new VerifyError(`Backup "app.bck.gz" failed verification: checksum mismatch`);
 * ```
 */
export class VerifyError extends Error {
  /** Always `"VerifyError"`. */
  override name = "VerifyError";
  /** The CLI exit code for this error: 3. */
  readonly exitCode: number = ExitCode.VERIFY;
}

/**
 * The exit code an error maps to: its `exitCode` when it has one, else 1.
 *
 * @example
 * ```ts
 * exitCodeOf(new ConfigError("bad")); // 2
 * ```
 */
export function exitCodeOf(err: unknown): number {
  if (err && typeof err === "object" && "exitCode" in err && typeof err.exitCode === "number") return err.exitCode;
  return ExitCode.FAILURE;
}

/**
 * The text of any thrown value, for one-line messages.
 *
 * @example
 * ```ts
 * errorMessage(new Error("boom")); // "boom"
 * ```
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
