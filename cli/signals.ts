/**
 * SIGINT/SIGTERM to AbortSignal: a signal aborts the work between steps, so temp files
 * are cleaned up and nothing partial is published.
 *
 * @module
 */

/**
 * Returns a signal that aborts on SIGINT or SIGTERM, and a function that removes the
 * listeners.
 *
 * @example
 * ```ts
 * const { signal, dispose } = abortOnSignals();
 * try { await work(signal); } finally { dispose(); }
 * ```
 */
export function abortOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const names: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT", "SIGBREAK"] : ["SIGINT", "SIGTERM"];
  const handler = () => {
    if (!controller.signal.aborted) controller.abort(new Error("Interrupted by a signal; nothing was published"));
  };
  const added: Deno.Signal[] = [];
  for (const name of names) {
    try {
      Deno.addSignalListener(name, handler);
      added.push(name);
    } catch { /* not supported on this platform */ }
  }
  return {
    signal: controller.signal,
    dispose: () => {
      for (const name of added) Deno.removeSignalListener(name, handler);
    },
  };
}
