/**
 * The SSH wire encoding SFTP uses (RFC 4251 section 5): a growable writer and a
 * bounds-checked reader for byte, uint32, uint64 and string.
 *
 * @module
 */

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** A malformed message from the peer. */
export class WireError extends Error {
  /** Always `"WireError"`. */
  override name = "WireError";
}

/** Builds one SSH message. */
export class SshWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len: number;

  /** @param capacity initial buffer size (it grows as needed) */
  constructor(capacity = 256) {
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
    this.#len = 0;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Appends one byte. */
  byte(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v;
    return this;
  }

  /** Appends a big-endian uint32. */
  u32(v: number): this {
    this.#room(4);
    this.#view.setUint32(this.#len, v >>> 0);
    this.#len += 4;
    return this;
  }

  /** Appends a big-endian uint64. */
  u64(v: number | bigint): this {
    this.#room(8);
    this.#view.setBigUint64(this.#len, BigInt(v));
    this.#len += 8;
    return this;
  }

  /** Appends raw bytes (no length prefix). */
  raw(bytes: Uint8Array): this {
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    return this;
  }

  /** Appends a string: uint32 length, then the bytes (UTF-8 for a JS string). */
  string(v: Uint8Array | string): this {
    const bytes = typeof v === "string" ? _enc.encode(v) : v;
    return this.u32(bytes.length).raw(bytes);
  }

  /** A copy of the written bytes. */
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Reads one SSH message; every read checks bounds and throws {@link WireError}. */
export class SshReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #pos: number;
  readonly #end: number;

  /** Reads `buf` (a view; nothing is copied until a string is taken with `bytes`). */
  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = start;
    this.#end = end;
  }

  #need(n: number): void {
    if (n < 0 || this.#pos + n > this.#end) throw new WireError("Malformed SFTP message: truncated field");
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.#end - this.#pos;
  }

  /** Reads one byte. */
  byte(): number {
    this.#need(1);
    return this.#buf[this.#pos++];
  }

  /** Reads a uint32. */
  u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** Reads a uint64 as a number (exact up to 2^53). */
  u64(): number {
    this.#need(8);
    const v = Number(this.#view.getBigUint64(this.#pos));
    this.#pos += 8;
    return v;
  }

  /** Reads a string's bytes as a view into the message (valid while the message is). */
  view(): Uint8Array {
    const n = this.u32();
    this.#need(n);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  /** Reads a string's bytes as a copy. */
  bytes(): Uint8Array {
    return this.view().slice();
  }

  /** Reads a string as UTF-8 text. */
  text(): string {
    return _dec.decode(this.view());
  }
}
