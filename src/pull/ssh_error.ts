/**
 * The error of the SSH transport: a kind (refused, timeout, host key, ...) and a one-line
 * message, and whether a retry may help.
 *
 * @module
 */

/** Why a connection or a remote operation failed. */
export type SshErrorKind =
  | "refused"
  | "unknown-host"
  | "timeout"
  | "auth"
  | "host-key"
  | "not-found"
  | "permission"
  | "connection"
  | "remote";

/**
 * A transport failure with a one-line message. `retryable` is true for a connection
 * that dropped after it was established (the pull retries those and resumes).
 *
 * @example
 * ```ts
 * try { await connectSftp({ host: "db1" }); } catch (err) {
 *   if (err instanceof SshError && err.kind === "host-key") console.error(err.message);
 * }
 * ```
 */
export class SshError extends Error {
  /** Always `"SshError"`. */
  override name = "SshError";
  /** What went wrong. */
  readonly kind: SshErrorKind;
  /** Whether reconnecting may help. */
  readonly retryable: boolean;
  /**
   * Builds the error.
   * @param kind what failed (connection, host key, authentication, ...)
   * @param message the one-line message
   * @param options `cause`, and `retryable` (a dropped connection that a retry may fix)
   */
  constructor(kind: SshErrorKind, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.retryable = options.retryable ?? false;
  }
}
