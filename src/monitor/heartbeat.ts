/**
 * Heartbeats the way healthchecks.io and Uptime Kuma-style push monitors expect them:
 * a request to the URL after a successful run, to `<URL>/fail` after a failed one, with
 * a short plain-text summary as the body. A heartbeat never throws and never changes
 * the run's result: it is bounded by a timeout and its failure is only reported.
 *
 * @module
 */

import { errorMessage } from "../errors.ts";

/** How long a heartbeat may take, by default, in ms. */
export const HEARTBEAT_TIMEOUT_MS = 10_000;

/** The most body text sent (healthchecks.io keeps the first 100 kB of a ping body). */
export const HEARTBEAT_BODY_LIMIT = 10_000;

/** Options for {@link sendHeartbeat}. */
export interface HeartbeatOptions {
  /** Whether the run succeeded: false pings the failure URL (`<URL>/fail`). Required: no default. */
  success: boolean;
  /** The plain-text summary sent, cut to {@link HEARTBEAT_BODY_LIMIT} characters. Required: no default. */
  body: string;
  /** Give up after this long, in ms. Default {@link HEARTBEAT_TIMEOUT_MS} (10 s). */
  timeoutMs?: number;
}

/** What happened to a heartbeat. */
export interface HeartbeatResult {
  /** The URL requested. */
  url: string;
  /** Whether the server answered with a 2xx status. */
  ok: boolean;
  /** The HTTP status, when the server answered. */
  status?: number;
  /** Why it failed, when it did. */
  error?: string;
}

/**
 * The URL a run pings: `url` itself after a success, `url` + `/fail` after a failure
 * (before any query string, which stays).
 *
 * @example
 * ```ts
 * heartbeatUrl("https://hc-ping.com/abc", false); // "https://hc-ping.com/abc/fail"
 * ```
 */
export function heartbeatUrl(url: string, success: boolean): string {
  if (success) return url;
  const u = new URL(url);
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/fail`;
  return u.toString();
}

/**
 * POSTs `options.body` (plain text, cut to {@link HEARTBEAT_BODY_LIMIT} characters) to the
 * success or failure URL, as `options.success` says. Resolves, never rejects, within the timeout.
 *
 * @example
 * ```ts
 * const r = await sendHeartbeat("https://hc-ping.com/abc", { success: true, body: "app: backed up, 1.2 MiB" });
 * if (!r.ok) console.error(`warning: heartbeat failed: ${r.error}`);
 * ```
 */
export async function sendHeartbeat(url: string, options: HeartbeatOptions): Promise<HeartbeatResult> {
  const { success, body } = options;
  let target = url;
  try {
    target = heartbeatUrl(url, success);
    const res = await fetch(target, {
      method: "POST",
      headers: { "content-type": "text/plain; charset=utf-8" },
      body: body.length > HEARTBEAT_BODY_LIMIT ? body.slice(0, HEARTBEAT_BODY_LIMIT) : body,
      signal: AbortSignal.timeout(options.timeoutMs ?? HEARTBEAT_TIMEOUT_MS),
      redirect: "follow",
    });
    await res.body?.cancel();
    if (!res.ok) return { url: target, ok: false, status: res.status, error: `HTTP ${res.status}` };
    return { url: target, ok: true, status: res.status };
  } catch (err) {
    const timedOut = err instanceof DOMException && err.name === "TimeoutError";
    return {
      url: target,
      ok: false,
      error: timedOut ? `no answer within ${(options.timeoutMs ?? HEARTBEAT_TIMEOUT_MS) / 1000}s` : errorMessage(err),
    };
  }
}
