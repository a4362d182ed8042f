/**
 * An SFTP version 3 client (draft-ietf-secsh-filexfer-02, as OpenSSH's sftp-server speaks
 * it) over a {@link ByteChannel} (the pipes of `ssh -s host sftp`): open, read, close,
 * stat and readdir, the requests a pull needs. A READ reply's bytes are copied straight
 * from the received chunk into the caller's buffer.
 *
 * @module
 */

import { clearLongTimer, type LongTimer, setLongTimeout } from "../timers.ts";
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
  EXTENDED: 200,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED_REPLY: 201,
} as const;

/** The OpenSSH extension that reports the server's limits (PROTOCOL, section 4.8). */
const _LIMITS_EXT = "limits@openssh.com";

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

/**
 * Why the client itself failed a request (no status from the server): no well-formed reply
 * within the request timeout, a malformed reply, or a listing over its limits.
 */
export type SftpFailure = "timeout" | "malformed" | "limit";

/** A failed SFTP request: `code` is the server's status code (2: no such file, 3: permission denied). */
export class SftpError extends Error {
  /** Always `"SftpError"`. */
  override name = "SftpError";
  /** The SFTP status code, or {@link FX.CONNECTION_LOST}. */
  readonly code: number;
  /** Set when the client failed the request itself (see {@link SftpFailure}); the server's status errors leave it unset. */
  readonly failure?: SftpFailure;
  /** @internal */
  constructor(code: number, message: string, options?: { cause?: unknown; failure?: SftpFailure }) {
    super(message, options);
    this.code = code;
    this.failure = options?.failure;
  }
}

function _malformed(detail: string, cause?: unknown): SftpError {
  return new SftpError(FX.FAILURE, `malformed SFTP reply: ${detail}`, { failure: "malformed", cause });
}

/** Options for {@link SftpClient.start}. */
export interface SftpClientOptions {
  /**
   * Fail every waiting request, and the session, when no well-formed reply arrives for
   * this long while requests are waiting (ms; any length, see timers.ts). Default 30000.
   */
  requestTimeoutMs?: number;
}

/** Bounds of one directory listing (a hostile server may send an endless one). */
export interface ListLimits {
  /** Most entries. Default {@link DEFAULT_LIST_LIMITS}.maxEntries (100 000). */
  maxEntries?: number;
  /** Most bytes of names (file name plus `ls -l` text). Default {@link DEFAULT_LIST_LIMITS}.maxBytes (32 MiB). */
  maxBytes?: number;
}

/** The default bounds of a directory listing: 100 000 entries, 32 MiB of names. */
export const DEFAULT_LIST_LIMITS: Required<ListLimits> = { maxEntries: 100_000, maxBytes: 32 * 1024 * 1024 };

/**
 * What the server reports with OpenSSH's `limits@openssh.com` extension (0: no limit
 * given). OpenSSH's sftp-server: packets of 262144 bytes, reads and writes of 261120.
 */
export interface SftpLimits {
  /** Largest packet the server accepts. */
  maxPacketLength: number;
  /** Largest READ the server serves in one reply (a longer one is answered short). */
  maxReadLength: number;
  /** Largest WRITE the server accepts. */
  maxWriteLength: number;
  /** Most handles open at once. */
  maxOpenHandles: number;
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

/** `cb`, callable once: a request settles once, whether by reply or by failure. */
function _once<A extends unknown[]>(cb: (...args: A) => void): (...args: A) => void {
  let called = false;
  return (...args: A) => {
    if (called) return;
    called = true;
    cb(...args);
  };
}

interface _Pending {
  reply: _Reply;
  /** Fails the request with an error of the client's own (lost connection, timeout, malformed reply). */
  fail: (err: SftpError) => void;
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
  #lost: SftpError | null = null;
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
  #version: ((version: number, extensions: Set<string>) => void) | null = null;
  #limits: Promise<SftpLimits | null> = Promise.resolve(null);
  #ended: ((err: Error) => void) | null = null;
  readonly #timeoutMs: number;
  /** When the last well-formed reply arrived (or the first of the waiting requests was sent). */
  #progressAt = 0;
  #watch: LongTimer | undefined;
  #fatalListeners = new Set<(err: SftpError) => void>();

  private constructor(channel: ByteChannel, options: SftpClientOptions) {
    this.#channel = channel;
    this.#timeoutMs = Math.max(1, options.requestTimeoutMs ?? 30_000);
  }

  /**
   * Completes the version exchange on `channel` (an `sftp` subsystem); rejects with the
   * channel's error when it ends first. (The caller bounds the wait for the version.)
   */
  static async start(channel: ByteChannel, options: SftpClientOptions = {}): Promise<SftpClient> {
    const client = new SftpClient(channel, options);
    const version = new Promise<[number, Set<string>]>((resolve, reject) => {
      client.#version = (v, extensions) => resolve([v, extensions]);
      client.#ended = reject;
    });
    channel.receive(client);
    channel.write(new SshWriter().u32(5).byte(FXP.INIT).u32(3).bytes()).catch((err) => client.#fatal(err));
    const [v, extensions] = await version;
    client.#ended = null;
    if (v < 3) throw new SftpError(FX.FAILURE, `the server speaks SFTP version ${v}; version 3 is needed`);
    // Asked now, awaited by the first download (the listing and stat come first).
    if (extensions.has(_LIMITS_EXT)) client.#limits = client.#askLimits();
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
          this.#progress();
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
          return this.#fatal(_malformed(`packet length ${this.#packetLen} (at most ${_MAX_PACKET} is accepted)`));
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
      if (!p) return this.#fatal(_malformed(`DATA for request ${id}, which is not waiting`));
      if (!p.target || dataLen > p.target.length || 9 + dataLen !== this.#packetLen) {
        return this.#fatal(_malformed(
          !p.target
            ? `DATA in reply to a request that is not a READ`
            : `DATA of ${dataLen} bytes in a packet of ${this.#packetLen} for a READ of ${p.target.length}`,
        ));
      }
      this.#pending.delete(id);
      this.#dataPending = p;
      this.#dataTarget = p.target;
      this.#dataOff = 0;
      this.#dataLeft = dataLen;
      if (dataLen === 0) {
        this.#dataTarget = null;
        this.#dataPending = null;
        this.#progress();
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
    if (this.#lost) return;
    const r = new SshReader(body);
    const type = r.byte();
    if (type === FXP.VERSION) {
      if (!this.#version) return this.#fatal(_malformed("a second VERSION"));
      let version: number;
      try {
        version = r.u32();
      } catch (err) {
        return this.#fatal(_malformed("VERSION without a version number", err));
      }
      // Extension pairs (name, data) follow; a garbled list just ends it (none is needed).
      const extensions = new Set<string>();
      try {
        while (r.remaining > 0 && extensions.size < 64) {
          const name = r.text();
          r.view();
          extensions.add(name);
        }
      } catch { /* keep the names read so far */ }
      this.#version(version, extensions);
      this.#version = null;
      return;
    }
    if (body.length < 5) return this.#fatal(_malformed(`a packet of type ${type} without a request id`));
    const id = r.u32();
    const p = this.#pending.get(id);
    if (!p) return this.#fatal(_malformed(`type ${type} for request ${id}, which is not waiting`));
    this.#pending.delete(id);
    this.#progress();
    try {
      p.reply(type, r);
    } catch (err) {
      const e = err instanceof SftpError && err.failure ? err : _malformed(
        `type ${type}: ${err instanceof Error ? err.message : String(err)}`,
        err,
      );
      p.fail(e); // no-op when its callback already ran
      this.#fatal(e);
    }
  }

  /** A well-formed reply arrived: the request timeout starts over. */
  #progress(): void {
    this.#progressAt = performance.now();
    if (this.#pending.size === 0 && this.#dataPending === null) {
      clearLongTimer(this.#watch);
      this.#watch = undefined;
    }
  }

  /** Arms the request timeout (when a request is sent while none was waiting). */
  #arm(): void {
    if (this.#watch) return;
    this.#progressAt = performance.now();
    const check = () => {
      this.#watch = undefined;
      if (this.#lost || (this.#pending.size === 0 && this.#dataPending === null)) return;
      const idle = performance.now() - this.#progressAt;
      if (idle < this.#timeoutMs) {
        this.#watch = setLongTimeout(check, this.#timeoutMs - idle);
        return;
      }
      this.#fatal(
        new SftpError(FX.FAILURE, `no reply within ${_seconds(this.#timeoutMs)}`, { failure: "timeout" }),
      );
    };
    this.#watch = setLongTimeout(check, this.#timeoutMs);
  }

  /**
   * Calls `listener` once when the session fails for a reason of the client's own (no reply
   * within the request timeout, a malformed reply): the connection is then unusable.
   */
  onFatal(listener: (err: SftpError) => void): void {
    this.#fatalListeners.add(listener);
  }

  /** The request timeout, in ms. */
  get requestTimeoutMs(): number {
    return this.#timeoutMs;
  }

  /** @internal The channel ended. */
  closed(err: Error): void {
    this.#fatal(err);
  }

  #fatal(err: Error): void {
    this.#ended?.(err);
    this.#ended = null;
    if (this.#lost) return;
    const lost = err instanceof SftpError && err.failure
      ? err
      : new SftpError(FX.CONNECTION_LOST, `connection lost: ${err.message}`, { cause: err });
    this.#lost = lost;
    clearLongTimer(this.#watch);
    this.#watch = undefined;
    const pending = [...this.#pending.values()];
    if (this.#dataPending) pending.push(this.#dataPending);
    this.#pending.clear();
    this.#dataPending = null;
    this.#dataTarget = null;
    this.#dataLeft = 0;
    for (const p of pending) p.fail(lost);
    if (lost.failure) { for (const listener of this.#fatalListeners) listener(lost); }
  }

  // ---- requests --------------------------------------------------------------------

  #request(type: number, body: (w: SshWriter) => void, pending: _Pending): void {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    if (this.#lost) return pending.fail(this.#lost);
    const w = new SshWriter().u32(0).byte(type).u32(id);
    body(w);
    const bytes = w.bytes();
    new DataView(bytes.buffer).setUint32(0, bytes.length - 4);
    this.#pending.set(id, pending);
    this.#arm();
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

  #expectHandle(what: string, callback: (err: Error | undefined, handle: Uint8Array) => void): _Pending {
    const cb = _once(callback);
    return {
      fail: (err) => cb(err, new Uint8Array()),
      reply: (type, r) => {
        if (type === FXP.HANDLE) {
          const handle = r.bytes();
          if (handle.length === 0 || handle.length > 256) {
            throw _malformed(`${what}: a handle of ${handle.length} bytes`);
          }
          return cb(undefined, handle);
        }
        if (type === FXP.STATUS) {
          const err = SftpClient.#status(r, what);
          if (err.code === FX.OK) throw _malformed(`${what}: status OK instead of a handle`);
          return cb(err, new Uint8Array());
        }
        throw _unexpected(what, type);
      },
    };
  }

  #expectStatus(what: string, callback: (err: Error | undefined) => void): _Pending {
    const cb = _once(callback);
    return {
      fail: (err) => cb(err),
      reply: (type, r) => {
        if (type !== FXP.STATUS) throw _unexpected(what, type);
        const err = SftpClient.#status(r, what);
        cb(err.code === FX.OK ? undefined : err);
      },
    };
  }

  #askLimits(): Promise<SftpLimits | null> {
    return new Promise((resolve) => {
      this.#request(FXP.EXTENDED, (w) => w.string(_LIMITS_EXT), {
        // The request's own failure fails the session: the next request reports it.
        fail: () => resolve(null),
        reply: (type, r) => {
          if (type === FXP.STATUS) return resolve(null); // not supported after all
          if (type !== FXP.EXTENDED_REPLY) throw _unexpected("limits", type);
          resolve({
            maxPacketLength: r.u64(),
            maxReadLength: r.u64(),
            maxWriteLength: r.u64(),
            maxOpenHandles: r.u64(),
          });
        },
      });
    });
  }

  /**
   * The server's limits (`limits@openssh.com`), or null when it does not report them (or
   * the session failed first).
   */
  limits(): Promise<SftpLimits | null> {
    return this.#limits;
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
    callback: (err: Error | undefined, bytesRead: number) => void,
  ): void {
    const cb = _once(callback);
    this.#request(FXP.READ, (w) => w.string(handle).u64(position).u32(length), {
      target: buffer.subarray(offset, offset + length),
      onData: (n) => cb(undefined, n),
      fail: (err) => cb(err, 0),
      reply: (type, r) => {
        if (type !== FXP.STATUS) throw _unexpected("read", type);
        const err = SftpClient.#status(r, "read");
        if (err.code === FX.OK) throw _malformed("read: status OK instead of data");
        cb(err.code === FX.EOF ? undefined : err, 0);
      },
    });
  }

  /** Stats `path` (following links). */
  stat(path: string, callback: (err: Error | undefined, attrs: Attributes) => void): void {
    const cb = _once(callback);
    this.#request(FXP.STAT, (w) => w.string(path), {
      fail: (err) => cb(err, {}),
      reply: (type, r) => {
        if (type === FXP.ATTRS) return cb(undefined, _attrs(r));
        if (type === FXP.STATUS) {
          const err = SftpClient.#status(r, "stat");
          if (err.code === FX.OK) throw _malformed("stat: status OK instead of attributes");
          return cb(err, {});
        }
        throw _unexpected("stat", type);
      },
    });
  }

  /**
   * Lists a directory (without `.` and `..`), at most `limits` (default
   * {@link DEFAULT_LIST_LIMITS}): beyond them it stops and fails with an SftpError whose
   * `failure` is `"limit"`, so an endless listing costs bounded memory.
   */
  readdir(path: string, callback: (err: Error | undefined, list: DirEntry[]) => void, limits: ListLimits = {}): void {
    const maxEntries = limits.maxEntries ?? DEFAULT_LIST_LIMITS.maxEntries;
    const maxBytes = limits.maxBytes ?? DEFAULT_LIST_LIMITS.maxBytes;
    const cb = _once(callback);
    this.#request(
      FXP.OPENDIR,
      (w) => w.string(path),
      this.#expectHandle("opendir", (err, handle) => {
        if (err) return cb(err, []);
        let list: DirEntry[] = [];
        let bytes = 0;
        const done = (e: Error | undefined) => this.close(handle, () => cb(e, e ? [] : list));
        const overLimit = (what: string) => {
          list = [];
          this.close(handle, () => {}); // not waited for: the answer changes nothing
          cb(new SftpError(FX.FAILURE, what, { failure: "limit" }), []);
        };
        const next = () =>
          this.#request(FXP.READDIR, (w) => w.string(handle), {
            fail: (e) => cb(e, []),
            reply: (type, r) => {
              if (type === FXP.NAME) {
                const n = r.u32();
                for (let i = 0; i < n; i++) {
                  const name = r.view();
                  const long = r.view();
                  const attrs = _attrs(r);
                  bytes += name.length + long.length;
                  if (bytes > maxBytes) return overLimit(`more than ${_mib(maxBytes)} of names`);
                  const filename = _utf8.decode(name);
                  if (filename === "." || filename === "..") continue;
                  if (list.length >= maxEntries) return overLimit(`more than ${maxEntries} entries`);
                  list.push({ filename, longname: _utf8.decode(long), attrs });
                }
                return next();
              }
              if (type === FXP.STATUS) {
                const e = SftpClient.#status(r, "readdir");
                if (e.code === FX.OK) throw _malformed("readdir: status OK instead of names");
                return done(e.code === FX.EOF ? undefined : e);
              }
              throw _unexpected("readdir", type);
            },
          });
        next();
      }),
    );
  }
}

const _utf8 = new TextDecoder();

function _unexpected(what: string, type: number): SftpError {
  return _malformed(`${what}: a reply of type ${type}`);
}

function _seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

function _mib(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}
