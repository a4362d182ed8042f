/**
 * Identity files: OpenSSH's own format (`openssh-key-v1`, what `ssh-keygen` writes) and
 * PEM (PKCS#1, SEC1, PKCS#8), for ed25519, ECDSA (P-256/384/521) and RSA keys.
 *
 * Unencrypted keys are read here. Encrypted OpenSSH keys need bcrypt-pbkdf, which
 * node:crypto lacks; those, and encrypted PEM, go through ssh2's `utils.parseKey`,
 * imported only then (it costs ~0.1 s and ~20 MiB to load).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { b64url, CURVES, fromB64url, leftPad } from "./keys.ts";
import { SshReader, SshWriter } from "./wire.ts";

/** A private key ready to sign, with its SSH public key blob. */
export interface SigningKey {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256` (384, 521) or `ssh-rsa`. */
  type: string;
  /** The public key blob. */
  publicKey: Uint8Array;
  /** The private key. */
  privateKey: KeyObject;
}

/**
 * Why a key file could not be used.
 *
 * @example
 * ```ts
 * try { await parsePrivateKey(data); } catch (err) {
 *   if (err instanceof KeyFileError && err.passphrase) console.error("the key needs its passphrase");
 * }
 * ```
 */
export class KeyFileError extends Error {
  /** Always `"KeyFileError"`. */
  override name = "KeyFileError";
  /** True when the key is encrypted and the passphrase is missing or wrong. */
  readonly passphrase: boolean;
  /** @internal */
  constructor(message: string, passphrase = false) {
    super(message);
    this.passphrase = passphrase;
  }
}

const _CRV_NAMES: Record<string, string> = Object.fromEntries(
  Object.entries(CURVES).map(([name, curve]) => [curve.crv, name]),
);

function _big(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString("hex")}`);
}

function _bytes(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** The SSH public key blob of a key (public or private). */
export function publicBlob(key: KeyObject): { type: string; blob: Uint8Array } {
  const jwk = createPublicKey(key).export({ format: "jwk" }) as Record<string, string>;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") {
    return { type: "ssh-ed25519", blob: new SshWriter().string("ssh-ed25519").string(fromB64url(jwk.x)).bytes() };
  }
  if (jwk.kty === "EC" && _CRV_NAMES[jwk.crv]) {
    const curve = _CRV_NAMES[jwk.crv];
    const size = CURVES[curve].size;
    const q = new Uint8Array(1 + 2 * size);
    q[0] = 4;
    q.set(leftPad(fromB64url(jwk.x), size), 1);
    q.set(leftPad(fromB64url(jwk.y), size), 1 + size);
    const type = `ecdsa-sha2-${curve}`;
    return { type, blob: new SshWriter().string(type).string(curve).string(q).bytes() };
  }
  if (jwk.kty === "RSA") {
    return {
      type: "ssh-rsa",
      blob: new SshWriter().string("ssh-rsa").mpint(fromB64url(jwk.e)).mpint(fromB64url(jwk.n)).bytes(),
    };
  }
  throw new KeyFileError(`unsupported key type (${jwk.kty} ${jwk.crv ?? ""})`);
}

function _openssh(text: string): SigningKey | "encrypted" {
  const body = text.replace(/-----(BEGIN|END) OPENSSH PRIVATE KEY-----/g, "").replace(/\s+/g, "");
  const raw = new Uint8Array(Buffer.from(body, "base64"));
  const magic = "openssh-key-v1\0";
  if (new TextDecoder().decode(raw.subarray(0, magic.length)) !== magic) {
    throw new KeyFileError("not an OpenSSH private key");
  }
  const r = new SshReader(raw, magic.length);
  const cipher = r.text();
  r.text(); // kdf name
  r.view(); // kdf options
  if (r.u32() < 1) throw new KeyFileError("the file holds no key");
  r.view(); // the public key, repeated inside
  if (cipher !== "none") return "encrypted";
  const p = new SshReader(r.view());
  if (p.u32() !== p.u32()) throw new KeyFileError("corrupt private key (check bytes differ)");
  const type = p.text();
  let jwk: Record<string, string>;
  if (type === "ssh-ed25519") {
    const pub = p.view(), priv = p.view();
    jwk = { kty: "OKP", crv: "Ed25519", x: b64url(pub), d: b64url(priv.subarray(0, 32)) };
  } else if (type.startsWith("ecdsa-sha2-")) {
    const curve = CURVES[p.text()];
    if (!curve) throw new KeyFileError(`unsupported curve in ${type}`);
    const q = p.view(), d = p.mpint();
    jwk = {
      kty: "EC",
      crv: curve.crv,
      x: b64url(q.subarray(1, 1 + curve.size)),
      y: b64url(q.subarray(1 + curve.size)),
      d: b64url(leftPad(d, curve.size)),
    };
  } else if (type === "ssh-rsa") {
    const n = p.mpint(), e = p.mpint(), d = p.mpint(), iqmp = p.mpint(), pp = p.mpint(), q = p.mpint();
    const dBig = _big(d);
    jwk = {
      kty: "RSA",
      n: b64url(n),
      e: b64url(e),
      d: b64url(d),
      p: b64url(pp),
      q: b64url(q),
      dp: b64url(_bytes(dBig % (_big(pp) - 1n))),
      dq: b64url(_bytes(dBig % (_big(q) - 1n))),
      qi: b64url(iqmp),
    };
  } else throw new KeyFileError(`unsupported key type "${type}"`);
  return _withBlob(createPrivateKey({ key: jwk, format: "jwk" }));
}

function _withBlob(privateKey: KeyObject): SigningKey {
  const { type, blob } = publicBlob(privateKey);
  return { type, publicKey: blob, privateKey };
}

async function _viaSsh2(data: Uint8Array, passphrase: string | undefined): Promise<SigningKey> {
  const { default: ssh2 } = await import("ssh2");
  const parsed = ssh2.utils.parseKey(Buffer.from(data), passphrase);
  if (parsed instanceof Error) {
    const needs = /encrypted|passphrase|bad decrypt|integrity check/i.test(parsed.message);
    throw new KeyFileError(parsed.message, needs);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  const pem = key.getPrivatePEM();
  if (!pem) throw new KeyFileError("the file holds no private key");
  return { type: key.type, publicKey: new Uint8Array(key.getPublicSSH()), privateKey: createPrivateKey(pem) };
}

/**
 * Reads a private key file's contents. `passphrase` is used only for an encrypted key;
 * without it such a key throws a {@link KeyFileError} with `passphrase` set.
 *
 * @example
 * ```ts
 * const key = await parsePrivateKey(await Deno.readFile(`${Deno.env.get("HOME")}/.ssh/id_ed25519`));
 * console.log(key.type);
 * ```
 */
export async function parsePrivateKey(data: Uint8Array, passphrase?: string): Promise<SigningKey> {
  const text = new TextDecoder().decode(data);
  if (text.includes("-----BEGIN OPENSSH PRIVATE KEY-----")) {
    const key = _openssh(text);
    if (key !== "encrypted") return key;
    if (passphrase === undefined) throw new KeyFileError("the key is encrypted", true);
    return await _viaSsh2(data, passphrase);
  }
  if (/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(text) && !/ENCRYPTED/.test(text)) {
    try {
      return _withBlob(createPrivateKey(text));
    } catch (err) {
      throw new KeyFileError(err instanceof Error ? err.message : String(err));
    }
  }
  if (/ENCRYPTED/.test(text) && passphrase === undefined) throw new KeyFileError("the key is encrypted", true);
  return await _viaSsh2(data, passphrase);
}
