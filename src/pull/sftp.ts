/**
 * An SFTP version 3 client (draft-ietf-secsh-filexfer-02, as OpenSSH's sftp-server speaks
 * it) over a {@link ByteChannel} (the pipes of `ssh -s host sftp`): open, read, close,
 * stat and readdir, the requests a pull needs. A READ reply's bytes are copied straight
 * from the received chunk into the caller's buffer.
 *
 * @module
 */

import { SshReader, SshWriter } from "./wire.ts";

/** Receives a channel's bytes, in order, and its end. */
export interface ChannelSink {
  /** The next bytes; the sink copies what it keeps before returning (the chunk is reused). */
  data(bytes: Uint8Array): void;
  /** The channel ended (EOF or failure); no more data follows. */
  closed(err: Error): void;
}

/**
 * A byte stream in both directions: what the SFTP client needs from a transport.
 *
 * @example
 * ```ts
 * const channel: ByteChannel = {
 *   write: async (bytes) => {},
 *   receive: (sink) => {},
 *   close: async () => {},
 * };
 * ```
 */
export interface ByteChannel {
  /** Sends bytes, in call order. */
  write(bytes: Uint8Array): Promise<void>;
  /** Starts delivering received bytes to `sink` (called once). */
  receive(sink: ChannelSink): void;
  /** Ends the channel. */
  close(): Promise<void>;
}

const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  OPENDIR: 11,
  READDIR: 12,
  STAT: 17,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
} as const;

/** SFTP status codes. */
export const FX = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, CONNECTION_LOST: 7 } as const;

const _ATTR_SIZE = 0x1;
const _ATTR_UIDGID = 0x2;
const _ATTR_PERMISSIONS = 0x4;
const _ATTR_ACMODTIME = 0x8;
const _ATTR_EXTENDED = 0x80000000;
const _FXF_READ = 0x1;
/** Largest SFTP packet accepted (OpenSSH's sftp-server sends at most 256 KiB). */
const _MAX_PACKET = 1024 * 1024;

/** A failed SFTP request: `code` is the server's status code (2: no such file, 3: permission denied). */
export class SftpError extends Error {
  /** Always `"SftpError"`. */
  override name = "SftpError";
  /** The SFTP status code, or {@link FX.CONNECTION_LOST}. */
  readonly code: number;
  /** @internal */
  constructor(code: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** File attributes (the fields a pull uses). */
export interface Attributes {
  /** Size in bytes. */
  size?: number;
  /** Mode bits (type and permissions). */
  mode?: number;
  /** Modification time, seconds since the epoch. */
  mtime?: number;
}

/** One directory entry. */
export interface DirEntry {
  /** The name. */
  filename: string;
  /** `ls -l` style text from the server. */
  longname: string;
  /** Its attributes. */
  attrs: Attributes;
}

type _Reply = (type: number, r: SshReader) => void;

interface _Pending {
  reply: _Reply;
  /** For READ: where the data goes. */
  target?: Uint8Array;
  /** For READ: called with the byte count when the data has been copied into `target`. */
  onData?: (n: number) => void;
}

function _attrs(r: SshReader): Attributes {
  const flags = r.u32();
  const a: Attributes = {};
  if (flags & _ATTR_SIZE) a.size = r.u64();
  if (flags & _ATTR_UIDGID) {
    r.u32();
    r.u32();
  }
  if (flags & _ATTR_PERMISSIONS) a.mode = r.u32();
  if (flags & _ATTR_ACMODTIME) {
    r.u32();
    a.mtime = r.u32();
  }
  if (flags & _ATTR_EXTENDED) {
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      r.view();
      r.view();
    }
  }
  return a;
}

/**
 * The SFTP client. Callbacks follow Node's style (error first), the shape the parallel
 * downloader drives without a promise per request.
 */
export class SftpClient implements ChannelSink {
  readonly #channel: ByteChannel;
  #nextId = 1;
  #pending = new Map<number, _Pending>();
  #lost: Error | null = null;
  // Parser state for the SFTP byte stream.
  #head = new Uint8Array(13);
  #headLen = 0;
  #packetLen = 0;
  #body: Uint8Array | null = null;
  #bodyLen = 0;
  #dataLeft = 0;
  #dataTarget: Uint8Array | null = null;
  #dataOff = 0;
  #dataPending: _Pending | null = null;
  #skip = 0;
  #version: ((version: number) => void) | null = null;
  #ended: ((err: Error) => void) | null = null;

  private constructor(channel: ByteChannel) {
    this.#channel = channel;
  }

  /**
   * Completes the version exchange on `channel` (an `sftp` subsystem); rejects with the
   * channel's error when it ends first.
   */
  static async start(channel: ByteChannel): Promise<SftpClient> {
    const client = new SftpClient(channel);
    const version = new Promise<number>((resolve, reject) => {
      client.#version = resolve;
      client.#ended = reject;
    });
    channel.receive(client);
    channel.write(new SshWriter().u32(5).byte(FXP.INIT).u32(3).bytes()).catch((err) => client.#fatal(err));
    const v = await version;
    client.#ended = null;
    if (v < 3) throw new SftpError(FX.FAILURE, `the server speaks SFTP version ${v}; version 3 is needed`);
    return client;
  }

  // ---- incoming --------------------------------------------------------------------

  /** @internal Channel bytes, in order. */
  data(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, bytes.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      if (this.#dataLeft > 0) {
        const n = Math.min(this.#dataLeft, bytes.length - i);
        this.#dataTarget!.set(bytes.subarray(i, i + n), this.#dataOff);
        this.#dataOff += n;
        this.#dataLeft -= n;
        i += n;
        if (this.#dataLeft === 0) {
          const p = this.#dataPending!;
          const n = this.#dataOff;
          this.#dataTarget = null;
          this.#dataPending = null;
          p.onData!(n);
        }
        continue;
      }
      if (this.#body) {
        const n = Math.min(this.#packetLen - this.#bodyLen, bytes.length - i);
        this.#body.set(bytes.subarray(i, i + n), this.#bodyLen);
        this.#bodyLen += n;
        i += n;
        if (this.#bodyLen === this.#packetLen) {
          const body = this.#body;
          this.#body = null;
          this.#packet(body);
        }
        continue;
      }
      // Header: length, type, id, and for DATA the data length (13 bytes).
      const want = this.#headLen < 5 ? 5 : Math.min(13, 4 + this.#packetLen);
      const n = Math.min(want - this.#headLen, bytes.length - i);
      this.#head.set(bytes.subarray(i, i + n), this.#headLen);
      this.#headLen += n;
      i += n;
      if (this.#headLen < want) continue;
      if (this.#headLen === 5) {
        this.#packetLen = new DataView(this.#head.buffer).getUint32(0);
        if (this.#packetLen < 1 || this.#packetLen > _MAX_PACKET) {
          return this.#fatal(new SftpError(FX.FAILURE, `bad SFTP packet length ${this.#packetLen}`));
        }
        if (this.#head[4] !== FXP.DATA || this.#packetLen < 9) {
          this.#startBody();
          continue;
        }
        continue; // read on to the DATA header
      }
      // A DATA header is complete.
      const view = new DataView(this.#head.buffer);
      const id = view.getUint32(5);
      const dataLen = view.getUint32(9);
      const p = this.#pending.get(id);
      this.#headLen = 0;
      if (!p?.target || dataLen > p.target.length || 9 + dataLen !== this.#packetLen) {
        this.#pending.delete(id);
        this.#skip = this.#packetLen - 9;
        p?.reply(FXP.STATUS, new SshReader(new SshWriter().u32(FX.FAILURE).string("bad READ reply").bytes()));
        continue;
      }
      this.#pending.delete(id);
      this.#dataPending = p;
      this.#dataTarget = p.target;
      this.#dataOff = 0;
      this.#dataLeft = dataLen;
      if (dataLen === 0) {
        this.#dataTarget = null;
        this.#dataPending = null;
        p.onData!(0);
      }
    }
  }

  #startBody(): void {
    this.#body = new Uint8Array(this.#packetLen);
    this.#body.set(this.#head.subarray(4, this.#headLen));
    this.#bodyLen = this.#headLen - 4;
    this.#headLen = 0;
    if (this.#bodyLen === this.#packetLen) {
      const body = this.#body;
      this.#body = null;
      this.#packet(body);
    }
  }

  #packet(body: Uint8Array): void {
    const r = new SshReader(body);
    const type = r.byte();
    if (type === FXP.VERSION) {
      this.#version?.(r.u32());
      this.#version = null;
      return;
    }
    const id = r.u32();
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    try {
      p.reply(type, r);
    } catch (err) {
      this.#fatal(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** @internal The channel ended. */
  closed(err: Error): void {
    this.#fatal(err);
  }

  #fatal(err: Error): void {
    this.#ended?.(err);
    this.#ended = null;
    if (this.#lost) return;
    this.#lost = new SftpError(FX.CONNECTION_LOST, `connection lost: ${err.message}`, { cause: err });
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    const status = new SshWriter().u32(FX.CONNECTION_LOST).string(this.#lost.message).bytes();
    for (const p of pending) p.reply(FXP.STATUS, new SshReader(status));
  }

  // ---- requests --------------------------------------------------------------------

  #request(type: number, body: (w: SshWriter) => void, pending: _Pending): void {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    if (this.#lost) {
      return pending.reply(
        FXP.STATUS,
        new SshReader(new SshWriter().u32(FX.CONNECTION_LOST).string(this.#lost.message).bytes()),
      );
    }
    const w = new SshWriter().u32(0).byte(type).u32(id);
    body(w);
    const bytes = w.bytes();
    new DataView(bytes.buffer).setUint32(0, bytes.length - 4);
    this.#pending.set(id, pending);
    this.#channel.write(bytes).catch((err) => this.#fatal(err));
  }

  static #status(r: SshReader, what: string): SftpError {
    const code = r.u32();
    let msg = "";
    try {
      msg = r.text();
    } catch { /* old servers omit it */ }
    return new SftpError(code, msg || `${what} failed (status ${code})`);
  }

  #expectHandle(what: string, cb: (err: Error | undefined, handle: Uint8Array) => void): _Pending {
    return {
      reply: (type, r) => {
        if (type === FXP.HANDLE) return cb(undefined, r.bytes());
        if (type === FXP.STATUS) return cb(SftpClient.#status(r, what), new Uint8Array());
        cb(new SftpError(FX.FAILURE, `${what}: unexpected reply ${type}`), new Uint8Array());
      },
    };
  }

  #expectStatus(what: string, cb: (err: Error | undefined) => void): _Pending {
    return {
      reply: (type, r) => {
        if (type !== FXP.STATUS) return cb(new SftpError(FX.FAILURE, `${what}: unexpected reply ${type}`));
        const err = SftpClient.#status(r, what);
        cb(err.code === FX.OK ? undefined : err);
      },
    };
  }

  /** Opens `path` for reading (`flags` must be `"r"`). */
  open(path: string, flags: "r", cb: (err: Error | undefined, handle: Uint8Array) => void): void {
    if (flags !== "r") throw new Error("only reading is supported");
    this.#request(FXP.OPEN, (w) => w.string(path).u32(_FXF_READ).u32(0), this.#expectHandle("open", cb));
  }

  /** Closes a handle. */
  close(handle: Uint8Array, cb: (err: Error | undefined) => void): void {
    this.#request(FXP.CLOSE, (w) => w.string(handle), this.#expectStatus("close", cb));
  }

  /**
   * Reads up to `length` bytes at `position` into `buffer[offset..]`; `cb(err, bytesRead)`,
   * with 0 bytes at the end of the file.
   */
  read(
    handle: Uint8Array,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
    cb: (err: Error | undefined, bytesRead: number) => void,
  ): void {
    this.#request(FXP.READ, (w) => w.string(handle).u64(position).u32(length), {
      target: buffer.subarray(offset, offset + length),
      onData: (n) => cb(undefined, n),
      reply: (type, r) => {
        if (type !== FXP.STATUS) return cb(new SftpError(FX.FAILURE, `read: unexpected reply ${type}`), 0);
        const err = SftpClient.#status(r, "read");
        cb(err.code === FX.EOF ? undefined : err, 0);
      },
    });
  }

  /** Stats `path` (following links). */
  stat(path: string, cb: (err: Error | undefined, attrs: Attributes) => void): void {
    this.#request(FXP.STAT, (w) => w.string(path), {
      reply: (type, r) => {
        if (type === FXP.ATTRS) return cb(undefined, _attrs(r));
        if (type === FXP.STATUS) return cb(SftpClient.#status(r, "stat"), {});
        cb(new SftpError(FX.FAILURE, `stat: unexpected reply ${type}`), {});
      },
    });
  }

  /** Lists a directory (without `.` and `..`). */
  readdir(path: string, cb: (err: Error | undefined, list: DirEntry[]) => void): void {
    this.#request(
      FXP.OPENDIR,
      (w) => w.string(path),
      this.#expectHandle("opendir", (err, handle) => {
        if (err) return cb(err, []);
        const list: DirEntry[] = [];
        const done = (e: Error | undefined) => this.close(handle, () => cb(e, e ? [] : list));
        const next = () =>
          this.#request(FXP.READDIR, (w) => w.string(handle), {
            reply: (type, r) => {
              if (type === FXP.NAME) {
                const n = r.u32();
                for (let i = 0; i < n; i++) {
                  const entry = { filename: r.text(), longname: r.text(), attrs: _attrs(r) };
                  if (entry.filename !== "." && entry.filename !== "..") list.push(entry);
                }
                return next();
              }
              if (type === FXP.STATUS) {
                const e = SftpClient.#status(r, "readdir");
                return done(e.code === FX.EOF ? undefined : e);
              }
              done(new SftpError(FX.FAILURE, `readdir: unexpected reply ${type}`));
            },
          });
        next();
      }),
    );
  }
}
