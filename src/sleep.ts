/**
 * Abortable waiting, shared by the strategies, the worker and the pull client.
 *
 * @module
 */

import { clearLongTimer, setLongTimeout } from "./timers.ts";

/**
 * The error to reject with when `signal` aborts: its reason when that is an Error.
 *
 * @example
 * ```ts
 * if (signal.aborted) throw abortReason(signal);
 * ```
 */
export function abortReason(signal: AbortSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error
    ? reason
    : new DOMException(String(reason ?? "The backup was cancelled"), "AbortError");
}

/**
 * Sleeps `ms` (any length: see {@link setLongTimeout}), waking early (and rejecting) when
 * `signal` aborts.
 *
 * @example
 * ```ts
 * await sleep(10, controller.signal);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setLongTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearLongTimer(timer);
      reject(abortReason(signal!));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
