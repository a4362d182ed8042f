/**
 * Public-key operations of the SSH client: checking the server's signature over the key
 * exchange (ssh-ed25519, ecdsa-sha2-nistp256/384/521, rsa-sha2-256/512), signing the
 * user-authentication request with an identity file's key, and asking an ssh-agent to sign.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import type { SigningKey } from "./private_key.ts";
import { SshReader, SshWriter } from "./wire.ts";

/** Host-key algorithms offered, in OpenSSH's default preference order. */
export const HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
] as const;

/** The ECDSA curves by their SSH name: JWK curve, signature hash, and coordinate size in bytes. */
export const CURVES: Record<string, { crv: string; hash: string; size: number }> = {
  nistp256: { crv: "P-256", hash: "sha256", size: 32 },
  nistp384: { crv: "P-384", hash: "sha384", size: 48 },
  nistp521: { crv: "P-521", hash: "sha512", size: 66 },
};

/** Bytes as base64url (JWK fields). */
export function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/** base64url text (JWK fields) as bytes. */
export function fromB64url(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64url"));
}

/** The key type named inside a key or signature blob. */
export function blobType(blob: Uint8Array): string {
  return new SshReader(blob).text();
}

/** The host-key algorithm families a key type can sign with. */
export function algorithmsForKeyType(keyType: string): string[] {
  if (keyType === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256"];
  return [keyType];
}

function _publicKey(blob: Uint8Array): { key: KeyObject; type: string; curve?: (typeof CURVES)[string] } {
  const r = new SshReader(blob);
  const type = r.text();
  if (type === "ssh-ed25519") {
    return {
      type,
      key: createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(r.view()) }, format: "jwk" }),
    };
  }
  if (type.startsWith("ecdsa-sha2-")) {
    const curve = CURVES[r.text()];
    const q = r.view();
    if (!curve || q.length !== 1 + 2 * curve.size || q[0] !== 4) throw new Error(`Unsupported ${type} host key`);
    const x = q.subarray(1, 1 + curve.size), y = q.subarray(1 + curve.size);
    return {
      type,
      curve,
      key: createPublicKey({ key: { kty: "EC", crv: curve.crv, x: b64url(x), y: b64url(y) }, format: "jwk" }),
    };
  }
  if (type === "ssh-rsa") {
    const e = r.mpint(), n = r.mpint();
    return { type, key: createPublicKey({ key: { kty: "RSA", n: b64url(n), e: b64url(e) }, format: "jwk" }) };
  }
  throw new Error(`Unsupported host key type "${type}"`);
}

/** An unsigned big-endian number left-padded with zeros to `size` bytes (throws when longer). */
export function leftPad(magnitude: Uint8Array, size: number): Uint8Array {
  if (magnitude.length > size) throw new Error(`A ${magnitude.length}-byte number does not fit in ${size} bytes`);
  const out = new Uint8Array(size);
  out.set(magnitude, size - magnitude.length);
  return out;
}

/**
 * Checks the server's signature blob over `data` (the exchange hash) with its host key
 * blob, for the negotiated host-key algorithm. Returns false for a bad signature.
 */
export function verifyHostSignature(
  algorithm: string,
  keyBlob: Uint8Array,
  sigBlob: Uint8Array,
  data: Uint8Array,
): boolean {
  const pub = _publicKey(keyBlob);
  const sr = new SshReader(sigBlob);
  const sigAlg = sr.text();
  const sig = sr.view();
  if (sigAlg !== algorithm) return false;
  if (algorithm === "ssh-ed25519") return verify(null, data, pub.key, sig);
  if (algorithm === "rsa-sha2-256" || algorithm === "rsa-sha2-512") {
    if (pub.type !== "ssh-rsa") return false;
    return verify(algorithm === "rsa-sha2-256" ? "sha256" : "sha512", data, pub.key, sig);
  }
  if (algorithm.startsWith("ecdsa-sha2-") && pub.curve && pub.type === algorithm) {
    const rs = new SshReader(sig);
    const size = pub.curve.size;
    const p1363 = new Uint8Array(2 * size);
    p1363.set(leftPad(rs.mpint(), size));
    p1363.set(leftPad(rs.mpint(), size), size);
    return verify(pub.curve.hash, data, { key: pub.key, dsaEncoding: "ieee-p1363" }, p1363);
  }
  return false;
}

/** Something that can sign user-authentication requests for one public key. */
export interface Signer {
  /** The public key blob. */
  readonly publicKey: Uint8Array;
  /** The algorithm name for the request (e.g. `rsa-sha2-256` for an `ssh-rsa` key). */
  readonly algorithm: string;
  /** Returns the signature blob (`string algorithm, string signature`) over `data`. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** A {@link Signer} for a key loaded from an identity file. */
export function fileSigner(key: SigningKey): Signer {
  const { type, privateKey } = key;
  const algorithm = type === "ssh-rsa" ? "rsa-sha2-256" : type;
  return {
    publicKey: key.publicKey,
    algorithm,
    sign(data: Uint8Array): Promise<Uint8Array> {
      let sig: Uint8Array;
      if (type === "ssh-ed25519") sig = sign(null, data, privateKey);
      else if (type === "ssh-rsa") sig = sign("sha256", data, privateKey);
      else if (type.startsWith("ecdsa-sha2-")) {
        const curve = CURVES[type.slice("ecdsa-sha2-".length)];
        if (!curve) throw new Error(`Unsupported key type "${type}"`);
        const raw = sign(curve.hash, data, { key: privateKey, dsaEncoding: "ieee-p1363" });
        sig = new SshWriter().mpint(raw.subarray(0, curve.size)).mpint(raw.subarray(curve.size)).bytes();
      } else throw new Error(`Unsupported key type "${type}"`);
      return Promise.resolve(new SshWriter().string(algorithm).string(sig).bytes());
    },
  };
}

const _AGENTC_REQUEST_IDENTITIES = 11;
const _AGENT_IDENTITIES_ANSWER = 12;
const _AGENTC_SIGN_REQUEST = 13;
const _AGENT_SIGN_RESPONSE = 14;
const _AGENT_RSA_SHA2_256 = 2;

async function _agentRequest(socket: string, message: Uint8Array): Promise<SshReader> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    const framed = new SshWriter().string(message).bytes();
    let off = 0;
    while (off < framed.length) off += await conn.write(framed.subarray(off));
    const readExactly = async (n: number): Promise<Uint8Array> => {
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = await conn.read(buf.subarray(got));
        if (r === null) throw new Error("ssh-agent closed the connection");
        got += r;
      }
      return buf;
    };
    const len = new DataView((await readExactly(4)).buffer).getUint32(0);
    if (len > 256 * 1024) throw new Error("ssh-agent sent an oversized reply");
    return new SshReader(await readExactly(len));
  } finally {
    conn.close();
  }
}

/** The keys an ssh-agent holds, each as a {@link Signer} that asks the agent to sign. */
export async function agentSigners(socket: string): Promise<Signer[]> {
  const r = await _agentRequest(socket, new Uint8Array([_AGENTC_REQUEST_IDENTITIES]));
  if (r.byte() !== _AGENT_IDENTITIES_ANSWER) throw new Error("ssh-agent refused to list its keys");
  const n = r.u32();
  const signers: Signer[] = [];
  for (let i = 0; i < n; i++) {
    const publicKey = r.bytes();
    r.view(); // comment
    const type = blobType(publicKey);
    const rsa = type === "ssh-rsa" || type === "ssh-rsa-cert-v01@openssh.com";
    const algorithm = type === "ssh-rsa"
      ? "rsa-sha2-256"
      : type === "ssh-rsa-cert-v01@openssh.com"
      ? "rsa-sha2-256-cert-v01@openssh.com"
      : type;
    signers.push({
      publicKey,
      algorithm,
      async sign(data: Uint8Array): Promise<Uint8Array> {
        const req = new SshWriter().byte(_AGENTC_SIGN_REQUEST).string(publicKey).string(data).u32(
          rsa ? _AGENT_RSA_SHA2_256 : 0,
        );
        const reply = await _agentRequest(socket, req.bytes());
        if (reply.byte() !== _AGENT_SIGN_RESPONSE) throw new Error("ssh-agent refused to sign");
        return reply.bytes();
      },
    });
  }
  return signers;
}
