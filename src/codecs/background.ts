/**
 * Decompress while downloading: the blocks the downloader writes, in file order, go to a
 * Worker that decompresses them (gzip or zstd, by their first bytes) into a temp
 * database file, in parallel with the transport and the hashing on the main thread. Once
 * the last byte arrives only the integrity check is left to do.
 *
 * @module
 */

import type { Codec } from "./levels.ts";

/** What the decompression found. */
export interface InflateResult {
  /** Size of the database written. */
  bytes: number;
  /** The decompression or write error, or null. See `isCorruptData` for corrupt data. */
  error: { message: string; code: string } | null;
}

/** A running decompression fed block by block. */
export interface Inflater {
  /**
   * Feeds the next block of the archive (copied, so the caller may reuse its buffer once
   * the promise resolves; it waits while 8 MiB is queued for the worker).
   */
  push(data: Uint8Array): Promise<void>;
  /** Ends the input; resolves when the database file is complete or the decompression failed. */
  finish(): Promise<InflateResult>;
  /** Stops early (the output file is left for the caller to remove). */
  abort(): Promise<void>;
}

/** Bytes per slot of the shared ring that carries archive blocks to the worker. */
const _SLOT = 256 * 1024;
/** Slots in the ring: at most this much (8 MiB) waits for the worker. */
const _SLOTS = 32;

/**
 * Starts decompressing into `outputPath` (created new; it must not exist). The codec is
 * the one the first bytes say; with `expect`, data of another codec is corrupt. The output
 * must be a SQLite database: decompression stops at the first block that is not one, grows
 * it past its header's size or would leave too little free space (`DatabaseOutputGuard`;
 * the error's code is then `SQLBK_NOT_SQLITE`, `SQLBK_TOO_LARGE` or `SQLBK_LOW_SPACE`).
 * `onError` hears of the first failure as soon as it happens (the caller may stop feeding
 * it); `finish()` still reports it.
 *
 * Blocks reach the worker through a fixed ring of shared memory, not as transferred
 * buffers: no allocation per block, so no page faults or garbage per block and a flat RSS.
 *
 * @example
 * ```ts
 * const inflater = startInflate("/tmp/out.db");
 * inflater.push(await Deno.readFile("app.bck.gz"));
 * const { bytes, error } = await inflater.finish();
 * ```
 */
export function startInflate(
  outputPath: string,
  options: { expect?: Codec | null; onError?: (error: { message: string; code: string }) => void } = {},
): Inflater {
  const worker = new Worker(new URL("./_decompress_worker.ts", import.meta.url).href, { type: "module" });
  const ring = new SharedArrayBuffer(_SLOT * _SLOTS);
  const free: number[] = Array.from({ length: _SLOTS }, (_, i) => _SLOTS - 1 - i);
  let settle: ((msg: { type: string } & Partial<InflateResult>) => void) | null = null;
  let crashed: Error | null = null;
  let unblock: (() => void) | null = null;
  worker.onmessage = (event) => {
    if (event.data.type === "failed") {
      options.onError?.(event.data.error);
      return;
    }
    if (event.data.type === "ack") {
      free.push(event.data.slot);
      const u = unblock;
      unblock = null;
      u?.();
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
  worker.postMessage({ type: "start", path: outputPath, ring, slotSize: _SLOT, expect: options.expect ?? null });
  let closed = false;
  const wait = (msg: unknown) =>
    new Promise<{ type: string } & Partial<InflateResult>>((resolve) => {
      settle = resolve;
      worker.postMessage(msg);
    });
  return {
    async push(data) {
      for (let off = 0; off < data.byteLength;) {
        if (closed || crashed) return;
        if (free.length === 0) {
          await new Promise<void>((resolve) => (unblock = resolve));
          continue;
        }
        const slot = free.pop()!;
        const len = Math.min(_SLOT, data.byteLength - off);
        new Uint8Array(ring, slot * _SLOT, len).set(data.subarray(off, off + len));
        worker.postMessage({ type: "data", slot, len });
        off += len;
      }
    },
    async finish() {
      closed = true;
      try {
        const msg = await wait({ type: "end" });
        if (crashed) throw crashed;
        return { bytes: msg.bytes!, error: msg.error ?? null };
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
