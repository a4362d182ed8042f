/**
 * OpenSSH `known_hosts` files: plain and hashed (`|1|salt|hash`) host patterns,
 * `[host]:port` entries, wildcards and negations, `@revoked` markers; checking a server's
 * host key against them, its SHA256 fingerprint as OpenSSH prints it, and recording a
 * new key (`--accept-new`).
 *
 * @module
 */

import { hostListMatches } from "./pattern.ts";
import { createHash, createHmac } from "node:crypto";
import { dirname } from "node:path";
import { Buffer } from "node:buffer";
import { writeAll } from "../fs.ts";

/** One parsed key line of a known_hosts file. */
export interface KnownHostEntry {
  /** 1-based line number. */
  line: number;
  /** `@revoked` or `@cert-authority`, when the line has a marker. */
  marker: string | null;
  /** The host patterns field as written (comma-separated, or one `|1|salt|hash`). */
  hosts: string;
  /** Key type, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The key blob (SSH wire format), decoded from base64. */
  key: Uint8Array;
}

/** The outcome of {@link checkHostKey}. */
export type HostKeyStatus =
  /** A line for this host has exactly this key. */
  | { status: "known"; entry: KnownHostEntry }
  /** No line for this host at all (or only lines for other key types). */
  | { status: "unknown"; otherTypes: string[] }
  /** A line for this host has a different key of the same type. */
  | { status: "changed"; entry: KnownHostEntry }
  /** The key is marked `@revoked`. */
  | { status: "revoked"; entry: KnownHostEntry };

/**
 * The name a host is looked up under: `host` for port 22, else `[host]:port`.
 *
 * @example
 * ```ts
 * hostKeyName("example.com", 2222); // "[example.com]:2222"
 * ```
 */
export function hostKeyName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/**
 * Parses the text of a known_hosts file. Comments, blank and malformed lines are skipped.
 *
 * @example
 * ```ts
 * const entries = parseKnownHosts("example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA...\n");
 * ```
 */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i].trim().split(/\s+/);
    if (fields[0] === "" || fields[0].startsWith("#")) continue;
    let marker: string | null = null;
    if (fields[0].startsWith("@")) marker = fields.shift()!;
    if (fields.length < 3) continue;
    const [hosts, keyType, b64] = fields;
    let key: Uint8Array;
    try {
      key = new Uint8Array(Buffer.from(b64, "base64"));
    } catch {
      continue;
    }
    if (key.length === 0) continue;
    entries.push({ line: i + 1, marker, hosts, keyType, key });
  }
  return entries;
}

/**
 * Whether the host patterns field of a known_hosts line matches `name` (as made by
 * {@link hostKeyName}). Handles hashed names, wildcards and `!negations`.
 *
 * @example
 * ```ts
 * hostPatternMatches("*.example.com,!bad.example.com", "db.example.com"); // true
 * ```
 */
export function hostPatternMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith("|1|")) {
    const [, , salt, hash] = patterns.split("|");
    if (!salt || !hash) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return mac === hash;
  }
  return hostListMatches([patterns], name);
}

/** The key type named inside an SSH key blob (its first string). */
export function keyTypeOf(key: Uint8Array): string {
  if (key.length < 4) return "unknown";
  const len = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(0);
  if (len > key.length - 4) return "unknown";
  return new TextDecoder().decode(key.subarray(4, 4 + len));
}

/**
 * The fingerprint of a key blob as OpenSSH prints it: `SHA256:` and unpadded base64.
 *
 * @example
 * ```ts
 * fingerprint(keyBlob); // "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
 * ```
 */
export function fingerprint(key: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/**
 * The label OpenSSH uses for a key type in messages: `ED25519`, `ECDSA`, `RSA`.
 *
 * @example
 * ```ts
 * keyTypeLabel("ssh-ed25519"); // "ED25519"
 * ```
 */
export function keyTypeLabel(keyType: string): string {
  if (keyType.includes("ed25519")) return "ED25519";
  if (keyType.startsWith("ecdsa")) return "ECDSA";
  if (keyType.startsWith("rsa") || keyType === "ssh-rsa") return "RSA";
  if (keyType === "ssh-dss") return "DSA";
  return keyType.toUpperCase();
}

function _same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks a server's host key (its SSH blob) against known_hosts entries for `host` and
 * `port`, as OpenSSH does: a revoked key is refused, a matching key is known, another key
 * of the same type is a changed key.
 *
 * @example
 * ```ts
 * const entries = parseKnownHosts(await Deno.readTextFile("known_hosts"));
 * const result = checkHostKey(entries, keyBlob, { host: "backup.example.com", port: 22 });
 * if (result.status !== "known") throw new Error(result.status);
 * ```
 */
export function checkHostKey(
  entries: KnownHostEntry[],
  key: Uint8Array,
  options: { host: string; port?: number },
): HostKeyStatus {
  const name = hostKeyName(options.host, options.port ?? 22);
  const type = keyTypeOf(key);
  for (const entry of entries) {
    if (entry.marker === "@revoked" && _same(entry.key, key)) return { status: "revoked", entry };
  }
  let known: KnownHostEntry | null = null;
  let changed: KnownHostEntry | null = null;
  const otherTypes = new Set<string>();
  for (const entry of entries) {
    if (entry.marker !== null) continue;
    if (!hostPatternMatches(entry.hosts, name)) continue;
    if (_same(entry.key, key) && entry.keyType === type) known ??= entry;
    else if (entry.keyType === type) changed ??= entry;
    else otherTypes.add(entry.keyType);
  }
  if (known) return { status: "known", entry: known };
  if (changed) return { status: "changed", entry: changed };
  return { status: "unknown", otherTypes: [...otherTypes] };
}

/**
 * The key types known_hosts holds for a host (not revoked), to ask the server for one of
 * those first.
 *
 * @example
 * ```ts
 * knownKeyTypes(entries, { host: "backup.example.com" }); // ["ssh-ed25519"]
 * ```
 */
export function knownKeyTypes(entries: KnownHostEntry[], options: { host: string; port?: number }): string[] {
  const name = hostKeyName(options.host, options.port ?? 22);
  const types = new Set<string>();
  for (const entry of entries) {
    if (entry.marker === null && hostPatternMatches(entry.hosts, name)) types.add(entry.keyType);
  }
  return [...types];
}

/**
 * Reads a known_hosts file; a missing file has no entries.
 *
 * @example
 * ```ts
 * const entries = await readKnownHosts(`${Deno.env.get("HOME")}/.ssh/known_hosts`);
 * ```
 */
export async function readKnownHosts(path: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await Deno.readTextFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw new Error(`Cannot read known_hosts file "${path}": ${err instanceof Error ? err.message : err}`, {
      cause: err,
    });
  }
}

/**
 * Appends a line for `host`/`port` with `key` to a known_hosts file, creating the file
 * (mode 0600) and its directory (mode 0700) when missing, as `ssh` does with
 * `StrictHostKeyChecking=accept-new`.
 *
 * @example
 * ```ts
 * await addKnownHost("known_hosts", keyBlob, { host: "backup.example.com", port: 2222 });
 * ```
 */
export async function addKnownHost(
  path: string,
  key: Uint8Array,
  options: { host: string; port?: number },
): Promise<string> {
  const line = `${hostKeyName(options.host, options.port ?? 22)} ${keyTypeOf(key)} ${
    Buffer.from(key).toString("base64")
  }\n`;
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let prefix = "";
  try {
    const text = await Deno.readTextFile(path);
    if (text.length > 0 && !text.endsWith("\n")) prefix = "\n";
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
  try {
    await writeAll(file, new TextEncoder().encode(prefix + line));
    await file.sync();
  } finally {
    file.close();
  }
  return line.trim();
}
