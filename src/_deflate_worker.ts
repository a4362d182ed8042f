/**
 * Worker for {@link ../gzip.ts}: compresses one block of input with raw deflate. Every
 * block but the last ends with a sync flush (byte-aligned, not final), so the blocks
 * concatenate into one valid deflate stream inside a single gzip member.
 *
 * Input and output live in SharedArrayBuffer slots owned by the main thread. The deflate
 * state is reset and reused for every block and writes straight into the output slot, so
 * nothing is allocated per block and memory stays flat whatever the input size.
 *
 * @module
 */
import zlib from "node:zlib";

interface Job {
  id: number;
  input: Uint8Array;
  output: Uint8Array;
  level: number;
  last: boolean;
}

/** The zlib handle under node:zlib's DeflateRaw: writes into a caller's buffer. */
interface _Handle {
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

const _engines = new Map<number, { handle: _Handle; state: Uint32Array } | null>();

function _engine(level: number): { handle: _Handle; state: Uint32Array } | null {
  if (!_engines.has(level)) {
    const stream = zlib.createDeflateRaw({ level }) as unknown as { _handle?: _Handle; _writeState?: Uint32Array };
    const ok = typeof stream._handle?.writeSync === "function" && stream._writeState instanceof Uint32Array;
    _engines.set(level, ok ? { handle: stream._handle!, state: stream._writeState! } : null);
  }
  return _engines.get(level)!;
}

function _deflate(input: Uint8Array, output: Uint8Array, level: number, last: boolean): number | Uint8Array {
  const flush = last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH;
  const engine = _engine(level);
  if (engine) {
    engine.handle.reset();
    engine.handle.writeSync(flush, input, 0, input.byteLength, output, 0, output.byteLength);
    const [availOut, availIn] = engine.state;
    if (availIn === 0 && availOut > 0) return output.byteLength - availOut;
  }
  // No reusable handle on this runtime, or the slot was too small: the allocating path.
  const out = zlib.deflateRawSync(input, { level, finishFlush: flush });
  if (out.byteLength <= output.byteLength) {
    output.set(out);
    return out.byteLength;
  }
  return new Uint8Array(out);
}

/** The worker's global scope, typed the same whichever lib the checker uses. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Job>) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

scope.onmessage = (event: MessageEvent<Job>) => {
  const { id, input, output, level, last } = event.data;
  try {
    const result = _deflate(input, output, level, last);
    if (typeof result === "number") scope.postMessage({ id, length: result });
    else scope.postMessage({ id, length: result.byteLength, overflow: result }, [result.buffer as ArrayBuffer]);
  } catch (err) {
    scope.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
