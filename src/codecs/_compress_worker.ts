/**
 * Worker for the block compressors ({@link ./_block_compress.ts}): compresses one block.
 *
 * - `gzip`: raw deflate; every block but the last ends with a sync flush (byte-aligned,
 *   not final), so the blocks concatenate into one valid deflate stream inside a single
 *   gzip member.
 * - `zstd`: one complete zstd frame per block, with a content checksum, so the frames
 *   concatenate into a file any `zstd -d` reads.
 *
 * Input and output live in SharedArrayBuffer slots owned by the main thread. The codec
 * state is reset and reused for every block and writes straight into the output slot, so
 * nothing is allocated per block and memory stays flat whatever the input size.
 *
 * @module
 */
import zlib from "node:zlib";
import { type HandleState, nativeHandle } from "./_native_handle.ts";

interface Job {
  id: number;
  codec: "gzip" | "zstd";
  input: Uint8Array;
  output: Uint8Array;
  level: number;
  last: boolean;
}

const _engines = new Map<string, HandleState | null>();

function _zstdParams(level: number): Record<number, number> {
  return { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 };
}

function _engine(codec: Job["codec"], level: number): HandleState | null {
  const key = `${codec}:${level}`;
  if (!_engines.has(key)) {
    const stream = codec === "gzip"
      ? zlib.createDeflateRaw({ level })
      : zlib.createZstdCompress({ params: _zstdParams(level) });
    _engines.set(key, nativeHandle(stream));
  }
  return _engines.get(key)!;
}

function _compress(job: Job): number | Uint8Array {
  const { codec, input, output, level, last } = job;
  const flush = codec === "zstd"
    ? zlib.constants.ZSTD_e_end
    : last
    ? zlib.constants.Z_FINISH
    : zlib.constants.Z_SYNC_FLUSH;
  const engine = _engine(codec, level);
  if (engine) {
    engine.handle.reset();
    engine.handle.writeSync(flush, input, 0, input.byteLength, output, 0, output.byteLength);
    const [availOut, availIn] = engine.state;
    if (availIn === 0 && availOut > 0) return output.byteLength - availOut;
  }
  // No reusable handle on this runtime, or the slot was too small: the allocating path.
  const out = codec === "zstd"
    ? zlib.zstdCompressSync(input, { params: _zstdParams(level) })
    : zlib.deflateRawSync(input, { level, finishFlush: flush });
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
  const { id } = event.data;
  try {
    const result = _compress(event.data);
    if (typeof result === "number") scope.postMessage({ id, length: result });
    else scope.postMessage({ id, length: result.byteLength, overflow: result }, [result.buffer as ArrayBuffer]);
  } catch (err) {
    scope.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
