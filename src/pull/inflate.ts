/**
 * Verify while downloading: the blocks the downloader writes, in file order, go to a
 * Worker that hashes them and gunzips them into a temp database file, in parallel with the
 * SSH decryption on the main thread. Once the last byte arrives only
 * `PRAGMA integrity_check` is left to do.
 *
 * @module
 */

/** What the gunzip found. */
export interface InflateResult {
  /** SHA-256 of the archive bytes fed in. */
  sha256: string;
  /** Size of the database written. */
  bytes: number;
  /** The gunzip or write error, or null. `code` starts with `Z_` for corrupt data. */
  error: { message: string; code: string } | null;
}

/** A running gunzip fed block by block. */
export interface Inflater {
  /**
   * Feeds the next block of the archive (copied, so the caller may reuse its buffer).
   * Resolves at once, or when less than the queue limit (16 MiB) is waiting for the worker.
   */
  push(data: Uint8Array): Promise<void> | void;
  /** Ends the input; resolves when the database file is complete or the gunzip failed. */
  finish(): Promise<InflateResult>;
  /** Stops early (the output file is left for the caller to remove). */
  abort(): Promise<void>;
}

/**
 * Starts hashing and gunzipping into `outputPath` (created new; it must not exist).
 *
 * @example
 * ```ts
 * const inflater = startInflate("/tmp/out.db");
 * inflater.push(await Deno.readFile("app.bck.gz"));
 * const { sha256, error } = await inflater.finish();
 * ```
 */
export function startInflate(outputPath: string): Inflater {
  const worker = new Worker(new URL("./_inflate_worker.ts", import.meta.url).href, { type: "module" });
  let settle: ((msg: { type: string } & Partial<InflateResult>) => void) | null = null;
  let crashed: Error | null = null;
  const limit = 16 * 1024 * 1024;
  let queued = 0;
  let unblock: (() => void) | null = null;
  worker.onmessage = (event) => {
    if (event.data.type === "ack") {
      queued -= event.data.bytes;
      if (queued < limit && unblock) {
        const u = unblock;
        unblock = null;
        u();
      }
      return;
    }
    settle?.(event.data);
  };
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    crashed = new Error(`The verification worker failed: ${event.message}`);
    settle?.({ type: "crashed" });
    unblock?.();
  };
  worker.postMessage({ type: "start", path: outputPath });
  let closed = false;
  const wait = (msg: unknown) =>
    new Promise<{ type: string } & Partial<InflateResult>>((resolve) => {
      settle = resolve;
      worker.postMessage(msg);
    });
  return {
    push(data) {
      if (closed || crashed) return;
      const copy = new Uint8Array(data.byteLength); // (Buffer#slice would be a view)
      copy.set(data);
      queued += copy.byteLength;
      worker.postMessage({ type: "data", buf: copy.buffer }, [copy.buffer]);
      if (queued >= limit) return new Promise<void>((resolve) => (unblock = resolve));
    },
    async finish() {
      closed = true;
      try {
        const msg = await wait({ type: "end" });
        if (crashed) throw crashed;
        return { sha256: msg.sha256!, bytes: msg.bytes!, error: msg.error ?? null };
      } finally {
        worker.terminate();
      }
    },
    async abort() {
      if (closed) return;
      closed = true;
      unblock?.();
      try {
        if (!crashed) await wait({ type: "abort" });
      } finally {
        worker.terminate();
      }
    },
  };
}
