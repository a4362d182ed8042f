/**
 * The native handle under a node:zlib stream, which writes into a caller's buffer: what
 * lets the codecs reuse one output buffer instead of allocating per chunk. Not a public
 * node API, so every user has a fallback when it is missing.
 *
 * @module
 */

/** The handle's synchronous write. */
export interface NativeHandle {
  reset(): void;
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    output: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
}

/** A handle and its state after each write: `[availOut, availIn]`. */
export interface HandleState {
  handle: NativeHandle;
  state: Uint32Array;
}

/** The handle of a node:zlib stream, or null when this runtime does not expose one. */
export function nativeHandle(stream: unknown): HandleState | null {
  const s = stream as { _handle?: NativeHandle; _writeState?: Uint32Array };
  const ok = typeof s._handle?.writeSync === "function" && s._writeState instanceof Uint32Array;
  return ok ? { handle: s._handle!, state: s._writeState! } : null;
}
