/**
 * Worker for {@link ../gzip.ts}: compresses one block of input with raw deflate. Every
 * block but the last ends with a sync flush (byte-aligned, not final), so the blocks
 * concatenate into one valid deflate stream inside a single gzip member.
 *
 * @module
 */
import zlib from "node:zlib";

interface Job {
  id: number;
  input: ArrayBuffer;
  level: number;
  last: boolean;
}

self.onmessage = (event: MessageEvent<Job>) => {
  const { id, input, level, last } = event.data;
  try {
    const out = zlib.deflateRawSync(new Uint8Array(input), {
      level,
      finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
    });
    const buffer = out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
    self.postMessage({ id, output: buffer }, [buffer]);
  } catch (err) {
    self.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
