/**
 * A minimal SSH-2 client connection, written for one job: moving a large file from an
 * OpenSSH server fast. It speaks the transport layer (RFC 4253) with curve25519-sha256 key
 * exchange (RFC 8731) and AES-GCM packets ({@link createGcm}), server-initiated re-keying,
 * public-key user authentication (RFC 4252) from identity files or an ssh-agent, and one
 * session channel running a subsystem (RFC 4254).
 *
 * Why not ssh2: under Deno its per-packet buffers and JS crypto held a pull to about half
 * of OpenSSH's throughput (bench/pull_bench.ts); here each packet is decrypted by
 * libcrypto into one reused buffer and handed on as a view.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from "node:crypto";
import { createGcm, GCM_CIPHERS, gcmKeyLength, type PacketCipher, TAG_LENGTH } from "./gcm.ts";
import { HOST_KEY_ALGORITHMS, type Signer, verifyHostSignature } from "./keys.ts";
import { SshReader, SshWriter } from "./wire.ts";

/** The client's identification string (RFC 4253 section 4.2), without CR LF. */
export const CLIENT_VERSION = "SSH-2.0-sqlbk_0.1";

// No "kex-strict-c-v00@openssh.com": the Terrapin prefix truncation it prevents needs
// chacha20-poly1305 or an encrypt-then-MAC CBC cipher, and this client only does AES-GCM.
const KEX_ALGORITHMS = ["curve25519-sha256", "curve25519-sha256@libssh.org"];
// Never used with an AEAD cipher, but the name-lists must still agree.
const MAC_ALGORITHMS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512"];

const MSG = {
  DISCONNECT: 1,
  IGNORE: 2,
  UNIMPLEMENTED: 3,
  DEBUG: 4,
  SERVICE_REQUEST: 5,
  SERVICE_ACCEPT: 6,
  EXT_INFO: 7,
  KEXINIT: 20,
  NEWKEYS: 21,
  KEX_ECDH_INIT: 30,
  KEX_ECDH_REPLY: 31,
  USERAUTH_REQUEST: 50,
  USERAUTH_FAILURE: 51,
  USERAUTH_SUCCESS: 52,
  USERAUTH_BANNER: 53,
  GLOBAL_REQUEST: 80,
  REQUEST_SUCCESS: 81,
  REQUEST_FAILURE: 82,
  CHANNEL_OPEN: 90,
  CHANNEL_OPEN_CONFIRMATION: 91,
  CHANNEL_OPEN_FAILURE: 92,
  CHANNEL_WINDOW_ADJUST: 93,
  CHANNEL_DATA: 94,
  CHANNEL_EXTENDED_DATA: 95,
  CHANNEL_EOF: 96,
  CHANNEL_CLOSE: 97,
  CHANNEL_REQUEST: 98,
  CHANNEL_SUCCESS: 99,
  CHANNEL_FAILURE: 100,
} as const;

/** Why the connection failed; `stage` says how far it got. */
export class SshProtocolError extends Error {
  /** Always `"SshProtocolError"`. */
  override name = "SshProtocolError";
  /** `connect`, `handshake` (version and key exchange), `auth`, `channel` or `open` (after setup). */
  readonly stage: string;
  /** Set when the server sent SSH_MSG_DISCONNECT. */
  readonly disconnectCode?: number;
  /** @internal */
  constructor(stage: string, message: string, options: { cause?: unknown; disconnectCode?: number } = {}) {
    super(message, { cause: options.cause });
    this.stage = stage;
    this.disconnectCode = options.disconnectCode;
  }
}

/** Options for {@link SshConnection.connect}. */
export interface SshConnectionOptions {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
  /** Login user. */
  user: string;
  /**
   * Checks the server's host key blob before any secret is sent; resolve false (or throw)
   * to refuse the connection.
   */
  verifyHostKey: (blob: Uint8Array) => boolean | Promise<boolean>;
  /** Ways to authenticate, tried in order; each may yield several keys (an agent). */
  auth: { label: string; signers: () => Promise<Signer[]> }[];
  /** Called with the label of each authentication method as it is tried. */
  onAuthTry?: (label: string) => void;
  /** Cipher preference; default {@link GCM_CIPHERS}. */
  ciphers?: readonly string[];
  /** Host-key algorithm preference; default {@link HOST_KEY_ALGORITHMS}. */
  hostKeyAlgorithms?: readonly string[];
  /** Aborts the connection attempt (the caller's timeout). */
  signal?: AbortSignal;
  /** Which AES-GCM implementation to use; default: libcrypto when it loads, else WebCrypto. */
  cryptoBackend?: "libcrypto" | "webcrypto";
}

interface _Keys {
  encrypt: PacketCipher;
  decrypt: PacketCipher;
}

interface _Kex {
  clientInit: Uint8Array;
  serverInit?: Uint8Array;
  privateKey?: KeyObject;
  publicKey?: Uint8Array;
  cipherC2S?: string;
  cipherS2C?: string;
  hostKeyAlgorithm?: string;
  /** The new keys, ready once the server's reply is checked (NEWKEYS switches to them). */
  keys?: _Keys;
  done: () => void;
  failed: (err: Error) => void;
}

/** The receiving side of the session channel: data in order, and the end of the channel. */
export interface ChannelSink {
  /** Bytes of CHANNEL_DATA; the view is valid only during the call. */
  data(bytes: Uint8Array): void;
  /** The channel or the connection ended (with the reason). */
  closed(err: Error): void;
}

function _choose(kind: string, client: readonly string[], server: string[]): string {
  const pick = client.find((a) => server.includes(a));
  if (!pick) {
    throw new SshProtocolError(
      "handshake",
      `no ${kind} in common with the server (sqlbk offers ${client.join(", ")}; the server offers ${
        server.join(", ") || "none"
      })`,
    );
  }
  return pick;
}

/** An SSH connection with (after {@link SshConnection.openSubsystem}) one session channel. */
export class SshConnection {
  readonly #conn: Deno.TcpConn;
  readonly #opts: SshConnectionOptions;
  #serverVersion = "";
  #sessionId: Uint8Array | null = null;
  #hostKey: Uint8Array | null = null;
  #encrypt: PacketCipher | null = null;
  #decrypt: PacketCipher | null = null;
  #kex: _Kex | null = null;
  /** Non-key-exchange payloads held while a key exchange runs. */
  #held: Uint8Array[] = [];
  /** Payloads waiting for the writer. */
  #outbox: Uint8Array[] = [];
  #writing: Promise<void> | null = null;
  #in = new Uint8Array(1 << 20);
  #inStart = 0;
  #inEnd = 0;
  #plain = new Uint8Array(1 << 16);
  /** Sequence number of the next packet received (for SSH_MSG_UNIMPLEMENTED). */
  #seqIn = 0;
  #waiters: { types: number[]; resolve: (msg: Uint8Array) => void; reject: (err: Error) => void }[] = [];
  #closedError: Error | null = null;
  #closeListeners = new Set<(err: Error) => void>();
  #lastReceived = Date.now();
  // The session channel.
  #sink: ChannelSink | null = null;
  #remoteChannel = -1;
  #remoteWindow = 0;
  #remoteMaxPacket = 0;
  #localWindow = 0;
  #windowWaiters: (() => void)[] = [];
  #stage = "handshake";
  /** The negotiated cipher (server to client). */
  cipher = "";
  /** Which crypto backend runs the cipher. */
  backend = "";

  /** Bytes of window granted to the server, and re-granted when half is used. */
  static readonly WINDOW = 16 * 1024 * 1024;
  /** Largest CHANNEL_DATA payload the server may send. */
  static readonly MAX_PACKET = 256 * 1024;

  private constructor(conn: Deno.TcpConn, opts: SshConnectionOptions) {
    this.#conn = conn;
    this.#opts = opts;
  }

  /**
   * Connects over TCP, exchanges versions and keys, verifies the host key and
   * authenticates. Rejects with an {@link SshProtocolError} (or the TCP error).
   */
  static async connect(opts: SshConnectionOptions): Promise<SshConnection> {
    opts.signal?.throwIfAborted();
    const conn = await Deno.connect({ hostname: opts.host, port: opts.port });
    conn.setNoDelay(true);
    const ssh = new SshConnection(conn, opts);
    const onAbort = () => ssh.#fail(new SshProtocolError(ssh.#stage, "aborted", { cause: opts.signal?.reason }));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await ssh.#handshake();
      ssh.#stage = "auth";
      await ssh.#authenticate();
      ssh.#stage = "open";
      return ssh;
    } catch (err) {
      ssh.#fail(err instanceof Error ? err : new Error(String(err)));
      throw ssh.#closedError ?? err;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The error that ended the connection, or null while it is up. */
  get closedError(): Error | null {
    return this.#closedError;
  }

  /** Milliseconds since a packet last arrived. */
  get idleMs(): number {
    return Date.now() - this.#lastReceived;
  }

  /** Calls `listener` when the connection ends; returns an unsubscribe function. */
  onClose(listener: (err: Error) => void): () => void {
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  // ---- reading ---------------------------------------------------------------------

  async #fill(need: number): Promise<void> {
    while (this.#inEnd - this.#inStart < need) {
      if (this.#inStart + need > this.#in.length) {
        if (need > this.#in.length) {
          const bigger = new Uint8Array(Math.max(need, this.#in.length * 2));
          bigger.set(this.#in.subarray(this.#inStart, this.#inEnd));
          this.#in = bigger;
        } else this.#in.copyWithin(0, this.#inStart, this.#inEnd);
        this.#inEnd -= this.#inStart;
        this.#inStart = 0;
      }
      const n = await this.#conn.read(this.#in.subarray(this.#inEnd));
      if (n === null) throw new SshProtocolError(this.#stage, "the server closed the connection");
      this.#inEnd += n;
    }
  }

  async #readVersion(): Promise<string> {
    for (let lines = 0; lines < 64; lines++) {
      let eol = -1;
      for (;;) {
        eol = this.#in.subarray(this.#inStart, this.#inEnd).indexOf(10);
        if (eol >= 0) break;
        if (this.#inEnd - this.#inStart > 8192) throw new SshProtocolError("handshake", "no SSH identification");
        await this.#fill(this.#inEnd - this.#inStart + 1);
      }
      const line = new TextDecoder().decode(this.#in.subarray(this.#inStart, this.#inStart + eol)).replace(
        /\r$/,
        "",
      );
      this.#inStart += eol + 1;
      if (line.startsWith("SSH-")) {
        if (!line.startsWith("SSH-2.0-") && !line.startsWith("SSH-1.99-")) {
          throw new SshProtocolError("handshake", `unsupported SSH protocol version "${line}"`);
        }
        return line;
      }
    }
    throw new SshProtocolError("handshake", "the server did not identify itself as SSH");
  }

  /** Reads and decrypts one packet; returns its payload as a view valid until the next read. */
  async #readPacket(): Promise<Uint8Array> {
    await this.#fill(4);
    const len = new DataView(this.#in.buffer, this.#in.byteOffset + this.#inStart, 4).getUint32(0);
    if (len < 5 || len > 1024 * 1024) throw new SshProtocolError(this.#stage, `bad packet length ${len}`);
    const dec = this.#decrypt;
    const total = 4 + len + (dec ? TAG_LENGTH : 0);
    await this.#fill(total);
    const input = this.#in.subarray(this.#inStart, this.#inStart + total);
    let packet: Uint8Array;
    if (dec) {
      if (this.#plain.length < 4 + len) this.#plain = new Uint8Array(4 + len);
      const ok = await dec.open(input, len, this.#plain);
      if (!ok) throw new SshProtocolError(this.#stage, "packet authentication failed (corrupted or tampered)");
      packet = this.#plain;
    } else packet = input;
    this.#inStart += total;
    this.#seqIn = (this.#seqIn + 1) >>> 0;
    const pad = packet[4];
    if (pad + 1 > len) throw new SshProtocolError(this.#stage, "bad padding length");
    this.#lastReceived = Date.now();
    return packet.subarray(5, 4 + len - pad);
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const payload = await this.#readPacket();
        const r = this.#dispatch(payload);
        if (r) await r;
      }
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #dispatch(p: Uint8Array): void | Promise<void> {
    const type = p[0];
    switch (type) {
      case MSG.CHANNEL_DATA: {
        const r = new SshReader(p, 1);
        r.u32();
        const data = r.view();
        this.#consumeWindow(data.length);
        this.#sink?.data(data);
        return;
      }
      case MSG.CHANNEL_WINDOW_ADJUST: {
        const r = new SshReader(p, 1);
        r.u32();
        this.#remoteWindow += r.u32();
        for (const w of this.#windowWaiters.splice(0)) w();
        return;
      }
      case MSG.CHANNEL_EXTENDED_DATA: {
        const r = new SshReader(p, 1);
        r.u32();
        r.u32();
        this.#consumeWindow(r.view().length);
        return;
      }
      case MSG.IGNORE:
      case MSG.DEBUG:
      case MSG.UNIMPLEMENTED:
      case MSG.EXT_INFO:
      case MSG.USERAUTH_BANNER:
      case MSG.REQUEST_SUCCESS:
      case MSG.REQUEST_FAILURE:
        return;
      case MSG.DISCONNECT: {
        const r = new SshReader(p, 1);
        const code = r.u32();
        const text = r.text();
        throw new SshProtocolError(this.#stage, `the server disconnected: ${text || `code ${code}`}`, {
          disconnectCode: code,
        });
      }
      case MSG.KEXINIT:
        return this.#onKexInit(p.slice());
      case MSG.KEX_ECDH_REPLY:
        return this.#onEcdhReply(p.slice());
      case MSG.NEWKEYS:
        return this.#onNewKeys();
      case MSG.GLOBAL_REQUEST: {
        const r = new SshReader(p, 1);
        r.view();
        if (r.bool()) this.#send(new Uint8Array([MSG.REQUEST_FAILURE]));
        return;
      }
      case MSG.CHANNEL_REQUEST: {
        const r = new SshReader(p, 1);
        r.u32();
        r.view();
        if (r.bool()) this.#send(new SshWriter().byte(MSG.CHANNEL_FAILURE).u32(this.#remoteChannel).bytes());
        return;
      }
      case MSG.CHANNEL_EOF:
        return;
      case MSG.CHANNEL_CLOSE:
        throw new SshProtocolError(this.#stage, "the server closed the SFTP channel");
    }
    const i = this.#waiters.findIndex((w) => w.types.includes(type));
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      w.resolve(p.slice());
      return;
    }
    this.#send(new SshWriter().byte(MSG.UNIMPLEMENTED).u32((this.#seqIn - 1) >>> 0).bytes());
  }

  #expect(...types: number[]): Promise<Uint8Array> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    return new Promise((resolve, reject) => this.#waiters.push({ types, resolve, reject }));
  }

  // ---- writing ---------------------------------------------------------------------

  /** Queues one message; key-exchange messages pass while others wait for new keys. */
  #send(payload: Uint8Array, kexMessage = false): void {
    if (this.#closedError) return;
    if (this.#kex && !kexMessage) {
      this.#held.push(payload);
      return;
    }
    this.#outbox.push(payload);
    if (!this.#writing) this.#writing = this.#flush();
  }

  async #flush(): Promise<void> {
    try {
      while (this.#outbox.length > 0) {
        const batch = this.#outbox.splice(0);
        const parts: Uint8Array[] = [];
        let size = 0;
        for (const payload of batch) {
          const part = await this.#frame(payload);
          parts.push(part.slice()); // libcrypto seals into one reused buffer
          size += part.length;
        }
        const out = new Uint8Array(size);
        let off = 0;
        for (const part of parts) {
          out.set(part, off);
          off += part.length;
        }
        for (let done = 0; done < out.length;) done += await this.#conn.write(out.subarray(done));
      }
    } catch (err) {
      this.#fail(
        new SshProtocolError(this.#stage, `cannot send to the server: ${(err as Error).message}`, { cause: err }),
      );
    } finally {
      this.#writing = null;
    }
  }

  /** Adds length and padding, and encrypts with the current keys. */
  async #frame(payload: Uint8Array): Promise<Uint8Array> {
    const enc = this.#encrypt;
    // With AES-GCM the length field is not part of the 16-byte alignment; without a cipher
    // the whole packet is aligned to 8.
    const block = enc ? 16 : 8;
    const unaligned = enc ? 1 + payload.length : 5 + payload.length;
    let pad = block - (unaligned % block);
    if (pad < 4) pad += block;
    const len = 1 + payload.length + pad;
    const packet = new Uint8Array(4 + len);
    new DataView(packet.buffer).setUint32(0, len);
    packet[4] = pad;
    packet.set(payload, 5);
    crypto.getRandomValues(packet.subarray(5 + payload.length));
    if (!enc) return packet;
    return await enc.seal(packet, len);
  }

  // ---- key exchange ----------------------------------------------------------------

  #kexInit(): Uint8Array {
    const w = new SshWriter().byte(MSG.KEXINIT).raw(crypto.getRandomValues(new Uint8Array(16)));
    const ciphers = this.#opts.ciphers ?? GCM_CIPHERS;
    w.names(KEX_ALGORITHMS).names(this.#opts.hostKeyAlgorithms ?? HOST_KEY_ALGORITHMS);
    w.names(ciphers).names(ciphers).names(MAC_ALGORITHMS).names(MAC_ALGORITHMS);
    w.names(["none"]).names(["none"]).names([]).names([]).bool(false).u32(0);
    return w.bytes();
  }

  async #handshake(): Promise<void> {
    await this.#conn.write(new TextEncoder().encode(`${CLIENT_VERSION}\r\n`));
    this.#serverVersion = await this.#readVersion();
    const done = this.#startKex();
    this.#readLoop();
    await done;
  }

  /** Sends our KEXINIT and resolves when both sides use the new keys. */
  #startKex(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const clientInit = this.#kexInit();
      this.#kex = { clientInit, done: resolve, failed: reject };
      this.#send(clientInit, true);
    });
  }

  #onKexInit(serverInit: Uint8Array): void {
    if (!this.#kex) {
      // The server starts a re-key: answer with ours; the data flow resumes after NEWKEYS.
      const clientInit = this.#kexInit();
      this.#kex = { clientInit, done: () => {}, failed: (err) => this.#fail(err) };
      this.#send(clientInit, true);
    }
    const kex = this.#kex;
    kex.serverInit = serverInit;
    const r = new SshReader(serverInit, 17);
    const kexAlgs = r.names(), hostAlgs = r.names(), c2s = r.names(), s2c = r.names();
    _choose("key exchange algorithm", KEX_ALGORITHMS, kexAlgs);
    kex.hostKeyAlgorithm = _choose("host key algorithm", this.#opts.hostKeyAlgorithms ?? HOST_KEY_ALGORITHMS, hostAlgs);
    const ciphers = this.#opts.ciphers ?? GCM_CIPHERS;
    kex.cipherC2S = _choose("cipher", ciphers, c2s);
    kex.cipherS2C = _choose("cipher", ciphers, s2c);
    const pair = generateKeyPairSync("x25519");
    kex.privateKey = pair.privateKey;
    kex.publicKey = new Uint8Array(
      Buffer.from((pair.publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url"),
    );
    this.#send(new SshWriter().byte(MSG.KEX_ECDH_INIT).string(kex.publicKey).bytes(), true);
  }

  async #onEcdhReply(p: Uint8Array): Promise<void> {
    const kex = this.#kex;
    if (!kex?.privateKey || !kex.publicKey || !kex.serverInit) {
      throw new SshProtocolError(this.#stage, "unexpected key exchange reply");
    }
    const r = new SshReader(p, 1);
    const hostKey = r.bytes(), serverPublic = r.bytes(), signature = r.bytes();
    if (serverPublic.length !== 32) throw new SshProtocolError(this.#stage, "bad curve25519 public key");
    const peer = createPublicKey({
      key: { kty: "OKP", crv: "X25519", x: Buffer.from(serverPublic).toString("base64url") },
      format: "jwk",
    });
    const secret = new Uint8Array(diffieHellman({ privateKey: kex.privateKey, publicKey: peer }));
    if (secret.every((b) => b === 0)) throw new SshProtocolError(this.#stage, "degenerate curve25519 shared secret");
    const k = new SshWriter().mpint(secret).bytes();
    const h = new Uint8Array(
      createHash("sha256").update(
        new SshWriter().string(CLIENT_VERSION).string(this.#serverVersion).string(kex.clientInit).string(
          kex.serverInit,
        ).string(hostKey).string(kex.publicKey).string(serverPublic).raw(k).bytes(),
      ).digest(),
    );
    if (!verifyHostSignature(kex.hostKeyAlgorithm!, hostKey, signature, h)) {
      throw new SshProtocolError(this.#stage, "the server's key exchange signature does not verify");
    }
    if (this.#hostKey === null) {
      if (!(await this.#opts.verifyHostKey(hostKey))) {
        throw new SshProtocolError("host-key", "host key rejected");
      }
      this.#hostKey = hostKey;
    } else if (Buffer.compare(this.#hostKey, hostKey) !== 0) {
      throw new SshProtocolError(this.#stage, "the server presented a different host key when re-keying");
    }
    this.#sessionId ??= h;
    const sessionId = this.#sessionId;
    const derive = (letter: string, size: number): Uint8Array => {
      const hash = (...parts: Uint8Array[]) => {
        const x = createHash("sha256");
        for (const part of parts) x.update(part);
        return new Uint8Array(x.digest());
      };
      let out = hash(k, h, new TextEncoder().encode(letter), sessionId);
      while (out.length < size) {
        const more = hash(k, h, out);
        const next = new Uint8Array(out.length + more.length);
        next.set(out);
        next.set(more, out.length);
        out = next;
      }
      return out.subarray(0, size);
    };
    const encKey = derive("C", gcmKeyLength(kex.cipherC2S!)), decKey = derive("D", gcmKeyLength(kex.cipherS2C!));
    const keys = {
      encrypt: await createGcm(kex.cipherC2S!, encKey, derive("A", 12), true, this.#opts.cryptoBackend),
      decrypt: await createGcm(kex.cipherS2C!, decKey, derive("B", 12), false, this.#opts.cryptoBackend),
    };
    // NEWKEYS is the last packet under the old keys; everything after it uses the new ones.
    this.#send(new Uint8Array([MSG.NEWKEYS]), true);
    const previous = this.#writing;
    if (previous) await previous;
    this.#encrypt?.dispose();
    this.#encrypt = keys.encrypt;
    this.cipher = kex.cipherS2C!;
    this.backend = keys.encrypt.backend;
    kex.keys = keys;
  }

  #onNewKeys(): void {
    const kex = this.#kex;
    if (!kex?.keys) throw new SshProtocolError(this.#stage, "unexpected NEWKEYS");
    const keys = kex.keys;
    this.#decrypt?.dispose();
    this.#decrypt = keys.decrypt;
    this.#kex = null;
    const held = this.#held.splice(0);
    for (const payload of held) this.#send(payload);
    kex.done();
  }

  // ---- authentication --------------------------------------------------------------

  async #authenticate(): Promise<void> {
    this.#send(new SshWriter().byte(MSG.SERVICE_REQUEST).string("ssh-userauth").bytes());
    await this.#expect(MSG.SERVICE_ACCEPT);
    const user = this.#opts.user;
    for (const method of this.#opts.auth) {
      this.#opts.onAuthTry?.(method.label);
      let signers: Signer[];
      try {
        signers = await method.signers();
      } catch {
        continue; // an agent that is not running: try the next method
      }
      for (const signer of signers) {
        const body = new SshWriter().byte(MSG.USERAUTH_REQUEST).string(user).string("ssh-connection").string(
          "publickey",
        ).bool(true).string(signer.algorithm).string(signer.publicKey);
        const signed = new SshWriter().string(this.#sessionId!).raw(body.bytes()).bytes();
        let signature: Uint8Array;
        try {
          signature = await signer.sign(signed);
        } catch {
          continue;
        }
        this.#send(body.string(signature).bytes());
        const reply = await this.#expect(MSG.USERAUTH_SUCCESS, MSG.USERAUTH_FAILURE);
        if (reply[0] === MSG.USERAUTH_SUCCESS) return;
        const r = new SshReader(reply, 1);
        if (!r.names().includes("publickey")) {
          throw new SshProtocolError("auth", "the server does not accept public-key authentication");
        }
      }
    }
    throw new SshProtocolError("auth", "authentication rejected");
  }

  // ---- the session channel ---------------------------------------------------------

  /** Opens a session channel running `subsystem` (e.g. `sftp`); its data goes to `sink`. */
  async openSubsystem(subsystem: string, sink: ChannelSink): Promise<void> {
    this.#stage = "channel";
    this.#localWindow = SshConnection.WINDOW;
    this.#send(
      new SshWriter().byte(MSG.CHANNEL_OPEN).string("session").u32(0).u32(SshConnection.WINDOW).u32(
        SshConnection.MAX_PACKET,
      ).bytes(),
    );
    const reply = await this.#expect(MSG.CHANNEL_OPEN_CONFIRMATION, MSG.CHANNEL_OPEN_FAILURE);
    const r = new SshReader(reply, 1);
    r.u32();
    if (reply[0] === MSG.CHANNEL_OPEN_FAILURE) {
      const code = r.u32();
      throw new SshProtocolError("channel", `the server refused a session channel: ${r.text() || `code ${code}`}`);
    }
    this.#remoteChannel = r.u32();
    this.#remoteWindow = r.u32();
    this.#remoteMaxPacket = r.u32();
    this.#send(
      new SshWriter().byte(MSG.CHANNEL_REQUEST).u32(this.#remoteChannel).string("subsystem").bool(true).string(
        subsystem,
      ).bytes(),
    );
    const ok = await this.#expect(MSG.CHANNEL_SUCCESS, MSG.CHANNEL_FAILURE);
    if (ok[0] !== MSG.CHANNEL_SUCCESS) {
      throw new SshProtocolError("channel", `the server refused the "${subsystem}" subsystem`);
    }
    this.#sink = sink;
    this.#stage = "open";
  }

  #consumeWindow(n: number): void {
    this.#localWindow -= n;
    if (this.#localWindow < SshConnection.WINDOW / 2) {
      const add = SshConnection.WINDOW - this.#localWindow;
      this.#localWindow += add;
      this.#send(new SshWriter().byte(MSG.CHANNEL_WINDOW_ADJUST).u32(this.#remoteChannel).u32(add).bytes());
    }
  }

  /** Sends bytes on the session channel (waits for window when the server has none). */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (this.#closedError) throw this.#closedError;
      if (this.#remoteWindow <= 0) {
        await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
        continue;
      }
      const n = Math.min(data.length - off, this.#remoteWindow, this.#remoteMaxPacket || 32768);
      this.#remoteWindow -= n;
      this.#send(
        new SshWriter(n + 16).byte(MSG.CHANNEL_DATA).u32(this.#remoteChannel).string(data.subarray(off, off + n))
          .bytes(),
      );
      off += n;
    }
  }

  /** Sends a keepalive that the server must answer (any packet back resets {@link idleMs}). */
  keepalive(): void {
    this.#send(new SshWriter().byte(MSG.GLOBAL_REQUEST).string("keepalive@openssh.com").bool(true).bytes());
  }

  // ---- closing ---------------------------------------------------------------------

  #fail(err: Error): void {
    if (this.#closedError) return;
    this.#closedError = err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const w of this.#windowWaiters.splice(0)) w();
    this.#kex?.failed(err);
    this.#kex = null;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#encrypt?.dispose();
    this.#decrypt?.dispose();
    this.#sink?.closed(err);
    for (const listener of this.#closeListeners) listener(err);
  }

  /** Says goodbye (SSH_MSG_DISCONNECT) and closes the socket. */
  async close(): Promise<void> {
    if (this.#closedError) return;
    this.#send(new SshWriter().byte(MSG.DISCONNECT).u32(11).string("bye").string("").bytes());
    const writing = this.#writing;
    if (writing) await Promise.race([writing, new Promise((r) => setTimeout(r, 1000))]);
    this.#fail(new SshProtocolError("closed", "the connection was closed"));
  }
}
