/**
 * Worker for {@link startInflate}: decompresses the archive blocks it receives into the
 * output file, off the thread that runs the transport. The output must be a SQLite
 * database within its header's size and the free-space margin (`DatabaseOutputGuard`).
 *
 * @module
 */

import { openDecompressor } from "./codec.ts";
import { DatabaseOutputGuard } from "./database_limit.ts";
import type { Decompressor } from "./decompressor.ts";
import type { Codec } from "./levels.ts";

type Message =
  | { type: "start"; path: string; ring: SharedArrayBuffer; slotSize: number; expect: Codec | null }
  | { type: "data"; slot: number; len: number }
  | { type: "end" }
  | { type: "abort" };

let file: Deno.FsFile | null = null;
let ring: SharedArrayBuffer | null = null;
let slotSize = 0;
let decompressor: Decompressor | null = null;
let guard: DatabaseOutputGuard | null = null;
let outputBytes = 0;
let failure: unknown = null;
/** Messages are handled one at a time, in order (each may wait on the file). */
let queue: Promise<void> = Promise.resolve();

/** The worker's global scope, typed the same whichever lib the checker uses. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Message>) => void) | null;
  postMessage(message: unknown): void;
};
const post = (msg: unknown) => scope.postMessage(msg);

/** The first failure, as data a message can carry. */
let failureData: { message: string; code: string } | null = null;

/** Records the first failure and reports it at once (later ones are dropped). */
function fail(err: unknown): void {
  if (failure !== null) return;
  failure = err;
  const e = err as { message?: string; code?: string };
  failureData = { message: String(e?.message ?? err), code: e?.code ?? "" };
  post({ type: "failed", error: failureData });
}

function write(block: Uint8Array): void {
  guard!.admit(block); // a database, within its header's size and the free-space margin; else throws
  // A worker may block: synchronous writes keep the output buffer's reuse simple.
  for (let off = 0; off < block.length;) off += file!.writeSync(block.subarray(off));
  outputBytes += block.length;
}

async function handle(m: Message): Promise<void> {
  if (m.type === "start") {
    ring = m.ring;
    slotSize = m.slotSize;
    try {
      file = Deno.openSync(m.path, { write: true, createNew: true });
      guard = new DatabaseOutputGuard(m.path);
      decompressor = openDecompressor("auto", write, { expect: m.expect });
    } catch (err) {
      fail(err);
    }
  } else if (m.type === "data") {
    const bytes = new Uint8Array(ring!, m.slot * slotSize, m.len);
    if (failure === null) {
      try {
        await decompressor!.push(bytes);
      } catch (err) {
        fail(err);
      }
    }
    // The slot is free again once its bytes are decompressed.
    post({ type: "ack", slot: m.slot });
  } else if (m.type === "end") {
    if (failure === null) {
      try {
        await decompressor!.end();
      } catch (err) {
        fail(err);
      }
    }
    decompressor?.dispose();
    file?.close();
    post({ type: "done", bytes: outputBytes, error: failureData });
  } else if (m.type === "abort") {
    decompressor?.dispose();
    file?.close();
    post({ type: "aborted" });
  }
}

scope.onmessage = (event: MessageEvent<Message>) => {
  queue = queue.then(() => handle(event.data));
};
