/**
 * Worker for {@link startInflate}: hashes the archive blocks it receives and gunzips them
 * into the output file, off the thread that decrypts the SSH stream.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";

type Message = { type: "start"; path: string } | { type: "data"; buf: ArrayBuffer } | { type: "end" } | {
  type: "abort";
};

const hash = createHash("sha256");
const input = new PassThrough();
let outputBytes = 0;
let failure: unknown = null;
let done: Promise<void> | null = null;

/** The worker's global scope, typed the same whichever lib the checker uses. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<Message>) => void) | null;
  postMessage(message: unknown): void;
};
const post = (msg: unknown) => scope.postMessage(msg);

scope.onmessage = async (event: MessageEvent<Message>) => {
  const m = event.data;
  if (m.type === "start") {
    const count = new Transform({
      transform(chunk: Uint8Array, _enc, cb) {
        outputBytes += chunk.byteLength;
        cb(null, chunk);
      },
    });
    done = pipeline(input, zlib.createGunzip(), count, createWriteStream(m.path, { flags: "wx" }));
    done.catch((err) => {
      failure ??= err;
    });
  } else if (m.type === "data") {
    const bytes = new Uint8Array(m.buf);
    hash.update(bytes);
    // Acknowledge once the gunzip has taken the block, so the sender can bound what is queued.
    if (failure === null && !input.destroyed) input.write(bytes, () => post({ type: "ack", bytes: bytes.byteLength }));
    else post({ type: "ack", bytes: bytes.byteLength });
  } else if (m.type === "end") {
    if (!input.destroyed) input.end();
    try {
      await done;
    } catch (err) {
      failure ??= err;
    }
    const err = failure as { message?: string; code?: string } | null;
    post({
      type: "done",
      sha256: hash.digest("hex"),
      bytes: outputBytes,
      error: err === null ? null : { message: String(err.message ?? err), code: err.code ?? "" },
    });
  } else if (m.type === "abort") {
    input.destroy();
    await done?.catch(() => {});
    post({ type: "aborted" });
  }
};
