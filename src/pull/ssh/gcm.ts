/**
 * The SSH packet cipher: AES-GCM as OpenSSH uses it (RFC 5647, `aes128-gcm@openssh.com`
 * and `aes256-gcm@openssh.com`): the 4-byte packet length is authenticated but not
 * encrypted, the 12-byte nonce is a fixed part plus a 64-bit counter bumped per packet,
 * and a 16-byte tag follows the ciphertext.
 *
 * Two backends behind one interface, chosen once per process:
 * - **OpenSSL's libcrypto over FFI** when it can be loaded (`SQLBK_LIBCRYPTO`, else the
 *   platform's usual names): hardware AES and GHASH, about 2.5 GB/s here.
 * - **WebCrypto** otherwise: everywhere Deno runs, but measured at 170-290 MiB/s, so a pull
 *   without libcrypto is slower, never wrong.
 *
 * @module
 */

import { loadOptionalLibrary } from "../../native.ts";

/** Cipher names this client offers, in preference order. */
export const GCM_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"] as const;

/** Bytes of the authentication tag after each packet. */
export const TAG_LENGTH = 16;

/** Encrypts or decrypts the packets of one direction of one connection. */
export interface PacketCipher {
  /** Which implementation runs it. */
  readonly backend: "libcrypto" | "webcrypto";
  /**
   * Encrypts `packet[4..4+len)` (the length field `packet[0..4)` is the associated data)
   * and returns the bytes to send: length, ciphertext, tag.
   */
  seal(packet: Uint8Array, len: number): Uint8Array | Promise<Uint8Array>;
  /**
   * Decrypts `input[4..4+len)` (tag at `input[4+len..4+len+16)`) into `out[4..4+len)`;
   * resolves false when the tag does not match.
   */
  open(input: Uint8Array, len: number, out: Uint8Array): boolean | Promise<boolean>;
  /** Frees native state. */
  dispose(): void;
}

/**
 * The libcrypto (OpenSSL 1.1 / 3.x EVP API) functions used. `int` is `i32`; the typed
 * arrays passed as `buffer` live until the call returns.
 */
const _SYMBOLS = {
  /** EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void) */
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  /** void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx) */
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  /** const EVP_CIPHER *EVP_aes_128_gcm(void) */
  EVP_aes_128_gcm: { parameters: [], result: "pointer" },
  /** const EVP_CIPHER *EVP_aes_256_gcm(void) */
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  /** int EVP_CipherInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl, const unsigned char *key, const unsigned char *iv, int enc) */
  EVP_CipherInit_ex: {
    parameters: [
      "pointer", // ctx
      "pointer", // type: NULL to keep the one set before
      "pointer", // impl: NULL, the default engine
      "buffer", // key: NULL to keep
      "buffer", // iv: NULL to keep
      "i32", // enc: 1 encrypt, 0 decrypt, -1 unchanged
    ],
    result: "i32",
  },
  /** int EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in, int inl) */
  EVP_CipherUpdate: {
    parameters: [
      "pointer", // ctx
      "buffer", // out: NULL to feed associated data
      "buffer", // outl: out, 4-byte int
      "buffer", // in
      "i32", // inl
    ],
    result: "i32",
  },
  /** int EVP_CipherFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *outm, int *outl): checks the tag when decrypting */
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr) */
  EVP_CIPHER_CTX_ctrl: {
    parameters: [
      "pointer", // ctx
      "i32", // type: EVP_CTRL_GCM_*
      "i32", // arg: a length (-1 for the whole fixed IV)
      "buffer", // ptr: IV, tag or scratch bytes
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

type _Lib = Deno.DynamicLibrary<typeof _SYMBOLS>;

const _CTRL_GCM_GET_TAG = 0x10;
const _CTRL_GCM_SET_TAG = 0x11;
const _CTRL_GCM_SET_IV_FIXED = 0x12;
const _CTRL_GCM_IV_GEN = 0x13;

function _names(): string[] {
  switch (Deno.build.os) {
    case "darwin":
      // Never the unversioned /usr/lib/libcrypto.dylib: macOS aborts a process that loads it.
      return [
        "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib",
        "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib",
      ];
    case "windows":
      return ["libcrypto-3-x64.dll", "libcrypto-3.dll"];
    default:
      return ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"];
  }
}

let _lib: _Lib | null | undefined;

/** Loads libcrypto once; null when none loads (WebCrypto is used then). */
function _libcrypto(): _Lib | null {
  // Memoized as null too: a missing library is looked for once.
  if (_lib === undefined) _lib = loadOptionalLibrary("SQLBK_LIBCRYPTO", _names(), _SYMBOLS);
  return _lib;
}

/**
 * The backend new ciphers use: `"libcrypto"` when it loads, else `"webcrypto"`.
 *
 * @example
 * ```ts
 * if (gcmBackend() === "webcrypto") console.error("libcrypto not found: pulls will be slower");
 * ```
 */
export function gcmBackend(): "libcrypto" | "webcrypto" {
  return _libcrypto() ? "libcrypto" : "webcrypto";
}

/** Key length in bytes for a GCM cipher name. */
export function gcmKeyLength(cipher: string): number {
  if (cipher === "aes128-gcm@openssh.com") return 16;
  if (cipher === "aes256-gcm@openssh.com") return 32;
  throw new Error(`Unsupported cipher "${cipher}"`);
}

/**
 * Makes the cipher for one direction.
 *
 * @param cipher one of {@link GCM_CIPHERS}
 * @param key the derived key (16 or 32 bytes)
 * @param iv the derived 12-byte initial nonce
 * @param encrypt true for the sending direction
 * @param backend which implementation; default {@link gcmBackend}
 */
export async function createGcm(
  cipher: string,
  key: Uint8Array,
  iv: Uint8Array,
  encrypt: boolean,
  backend: "libcrypto" | "webcrypto" = gcmBackend(),
): Promise<PacketCipher> {
  if (key.length !== gcmKeyLength(cipher)) throw new Error(`Bad key length for ${cipher}`);
  if (backend === "libcrypto") {
    const lib = _libcrypto();
    if (!lib) throw new Error("libcrypto cannot be loaded");
    return new _LibcryptoGcm(lib, cipher, key, iv.slice(0, 12), encrypt);
  }
  const k = await crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    encrypt ? "encrypt" : "decrypt",
  ]);
  return new _WebCryptoGcm(k, iv.slice(0, 12));
}

class _LibcryptoGcm implements PacketCipher {
  readonly backend = "libcrypto";
  #lib: _Lib;
  #ctx: Deno.PointerValue;
  #encrypt: boolean;
  #outl = new Int32Array(1);
  #scratch = new Uint8Array(16);
  #out: Uint8Array = new Uint8Array(0);

  constructor(lib: _Lib, cipher: string, key: Uint8Array, iv: Uint8Array, encrypt: boolean) {
    this.#lib = lib;
    this.#encrypt = encrypt;
    const s = lib.symbols;
    const ctx = s.EVP_CIPHER_CTX_new();
    if (ctx === null) throw new Error("libcrypto: EVP_CIPHER_CTX_new failed");
    this.#ctx = ctx;
    const evp = cipher === "aes128-gcm@openssh.com" ? s.EVP_aes_128_gcm() : s.EVP_aes_256_gcm();
    const mode = encrypt ? 1 : 0;
    if (
      s.EVP_CipherInit_ex(ctx, evp, null, null, null, mode) !== 1 ||
      s.EVP_CIPHER_CTX_ctrl(ctx, _CTRL_GCM_SET_IV_FIXED, -1, iv as Uint8Array<ArrayBuffer>) !== 1 ||
      s.EVP_CipherInit_ex(ctx, null, null, key as Uint8Array<ArrayBuffer>, null, -1) !== 1
    ) {
      s.EVP_CIPHER_CTX_free(ctx);
      throw new Error("libcrypto: cannot set up AES-GCM");
    }
  }

  #begin(aad: Uint8Array): void {
    const s = this.#lib.symbols;
    // IV_GEN uses the current nonce and then increments its counter part, as RFC 5647 asks.
    if (s.EVP_CIPHER_CTX_ctrl(this.#ctx, _CTRL_GCM_IV_GEN, 1, this.#scratch) !== 1) {
      throw new Error("libcrypto: GCM nonce step failed");
    }
    if (s.EVP_CipherUpdate(this.#ctx, null, this.#outl, aad as Uint8Array<ArrayBuffer>, 4) !== 1) {
      throw new Error("libcrypto: GCM AAD failed");
    }
  }

  seal(packet: Uint8Array, len: number): Uint8Array {
    if (!this.#encrypt) throw new Error("decrypting cipher used to seal");
    const total = 4 + len + TAG_LENGTH;
    if (this.#out.length < total) this.#out = new Uint8Array(Math.max(total, 65536));
    const out = this.#out.subarray(0, total);
    out.set(packet.subarray(0, 4));
    const s = this.#lib.symbols;
    this.#begin(packet.subarray(0, 4));
    if (
      s.EVP_CipherUpdate(
          this.#ctx,
          out.subarray(4) as Uint8Array<ArrayBuffer>,
          this.#outl,
          packet.subarray(4, 4 + len) as Uint8Array<ArrayBuffer>,
          len,
        ) !== 1 ||
      s.EVP_CipherFinal_ex(this.#ctx, this.#scratch, this.#outl) !== 1 ||
      s.EVP_CIPHER_CTX_ctrl(
          this.#ctx,
          _CTRL_GCM_GET_TAG,
          TAG_LENGTH,
          out.subarray(4 + len) as Uint8Array<ArrayBuffer>,
        ) !==
        1
    ) {
      throw new Error("libcrypto: GCM encryption failed");
    }
    return out;
  }

  open(input: Uint8Array, len: number, out: Uint8Array): boolean {
    const s = this.#lib.symbols;
    if (
      s.EVP_CIPHER_CTX_ctrl(
        this.#ctx,
        _CTRL_GCM_SET_TAG,
        TAG_LENGTH,
        input.subarray(4 + len, 4 + len + TAG_LENGTH) as Uint8Array<ArrayBuffer>,
      ) !== 1
    ) {
      throw new Error("libcrypto: GCM tag setup failed");
    }
    this.#begin(input.subarray(0, 4));
    if (
      s.EVP_CipherUpdate(
        this.#ctx,
        out.subarray(4, 4 + len) as Uint8Array<ArrayBuffer>,
        this.#outl,
        input.subarray(4, 4 + len) as Uint8Array<ArrayBuffer>,
        len,
      ) !== 1
    ) {
      return false;
    }
    out.set(input.subarray(0, 4));
    return s.EVP_CipherFinal_ex(this.#ctx, this.#scratch, this.#outl) === 1;
  }

  dispose(): void {
    if (this.#ctx !== null) this.#lib.symbols.EVP_CIPHER_CTX_free(this.#ctx);
    this.#ctx = null;
  }
}

class _WebCryptoGcm implements PacketCipher {
  readonly backend = "webcrypto";
  #key: CryptoKey;
  #iv: Uint8Array<ArrayBuffer>;
  #ivView: DataView;

  constructor(key: CryptoKey, iv: Uint8Array) {
    this.#key = key;
    this.#iv = new Uint8Array(iv);
    this.#ivView = new DataView(this.#iv.buffer);
  }

  /** The nonce for this packet (a copy), then the counter (last 8 bytes) incremented. */
  #nextIv(): Uint8Array<ArrayBuffer> {
    const iv = this.#iv.slice();
    this.#ivView.setBigUint64(4, (this.#ivView.getBigUint64(4) + 1n) & 0xffffffffffffffffn);
    return iv;
  }

  async seal(packet: Uint8Array, len: number): Promise<Uint8Array> {
    const iv = this.#nextIv();
    const aad = packet.slice(0, 4);
    const ct = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: aad, tagLength: 128 },
        this.#key,
        packet.slice(4, 4 + len),
      ),
    );
    const out = new Uint8Array(4 + ct.length);
    out.set(aad);
    out.set(ct, 4);
    return out;
  }

  async open(input: Uint8Array, len: number, out: Uint8Array): Promise<boolean> {
    const iv = this.#nextIv();
    const aad = input.slice(0, 4);
    let pt: ArrayBuffer;
    try {
      pt = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv, additionalData: aad, tagLength: 128 },
        this.#key,
        input.slice(4, 4 + len + TAG_LENGTH),
      );
    } catch {
      return false;
    }
    out.set(aad);
    out.set(new Uint8Array(pt), 4);
    return true;
  }

  dispose(): void {}
}
