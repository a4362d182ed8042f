/**
 * SSH client authentication: ssh-agent (when `SSH_AUTH_SOCK` is set), then identity
 * files (`--identity`, `IdentityFile` from ~/.ssh/config, else `~/.ssh/id_ed25519`,
 * `id_ecdsa`, `id_rsa`). Encrypted keys take their passphrase from `SQLBK_SSH_PASSPHRASE`
 * or a prompt when stdin is a terminal.
 *
 * @module
 */

import { join } from "node:path";
import { ConfigError, errorMessage } from "../errors.ts";
import { KeyFileError, parsePrivateKey, type SigningKey } from "./ssh/private_key.ts";

/** The default identity files, in the order they are tried. */
export const DEFAULT_IDENTITIES = ["id_ed25519", "id_ecdsa", "id_rsa"] as const;

/** One way to authenticate. */
export type AuthMethod =
  | { type: "agent"; socket: string; label: string }
  | { type: "publickey"; key: SigningKey; label: string };

/** Options for {@link authMethods}. */
export interface AuthOptions {
  /** Identity files given explicitly (`--identity`); when empty the config's or the defaults are used. */
  identityFiles?: string[];
  /** Identity files from ~/.ssh/config, used when none are given explicitly. */
  configIdentityFiles?: string[];
  /** The agent socket. Default: `$SSH_AUTH_SOCK`; `null` disables the agent. */
  agentSocket?: string | null;
  /** The passphrase for encrypted keys. Default: `$SQLBK_SSH_PASSPHRASE`, else a prompt on a terminal. */
  passphrase?: string;
  /** The home directory for the defaults. Default: `$HOME`. */
  home?: string;
}

async function _promptHidden(prompt: string): Promise<string | null> {
  if (!Deno.stdin.isTerminal()) return null;
  const enc = new TextEncoder();
  Deno.stderr.writeSync(enc.encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  try {
    const buf = new Uint8Array(1);
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const c = buf[0];
      if (c === 13 || c === 10) break;
      if (c === 3) throw new Error("Interrupted at the passphrase prompt");
      if (c === 127 || c === 8) bytes.pop();
      else bytes.push(c);
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(enc.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Loads one private key file; returns null when the file does not exist. Throws a
 * {@link ConfigError} naming the file when it is not a key or the passphrase is wrong.
 *
 * @example
 * ```ts
 * const key = await loadIdentity(`${Deno.env.get("HOME")}/.ssh/id_ed25519`);
 * ```
 */
export async function loadIdentity(path: string, options: { passphrase?: string } = {}): Promise<SigningKey | null> {
  let data: Uint8Array;
  try {
    data = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new ConfigError(`Cannot read identity file "${path}": ${err instanceof Error ? err.message : err}`, {
      cause: err,
    });
  }
  try {
    return await parsePrivateKey(data);
  } catch (err) {
    if (!(err instanceof KeyFileError && err.passphrase)) {
      throw new ConfigError(`Identity file "${path}" is not a usable private key: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
  const passphrase = options.passphrase ?? Deno.env.get("SQLBK_SSH_PASSPHRASE") ??
    await _promptHidden(`Enter passphrase for key '${path}': `);
  if (passphrase === null) {
    throw new ConfigError(
      `Identity file "${path}" is encrypted: set SQLBK_SSH_PASSPHRASE, run from a terminal to be prompted, or use ssh-agent`,
    );
  }
  try {
    return await parsePrivateKey(data, passphrase);
  } catch (err) {
    if (err instanceof KeyFileError && err.passphrase) {
      throw new ConfigError(`Cannot decrypt identity file "${path}": wrong passphrase (${err.message})`, {
        cause: err,
      });
    }
    throw new ConfigError(`Identity file "${path}" is not a usable private key: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * The authentication methods to try, in order. An explicit identity file that does not
 * exist is an error; missing default files are skipped.
 *
 * @example
 * ```ts
 * const methods = await authMethods({ identityFiles: ["deploy_key"] });
 * console.log(methods.map((m) => m.label));
 * ```
 */
export async function authMethods(options: AuthOptions = {}): Promise<AuthMethod[]> {
  const methods: AuthMethod[] = [];
  const socket = options.agentSocket === undefined ? Deno.env.get("SSH_AUTH_SOCK") : options.agentSocket;
  if (socket) methods.push({ type: "agent", socket, label: `ssh-agent (${socket})` });
  const explicit = options.identityFiles ?? [];
  const fromConfig = options.configIdentityFiles ?? [];
  const home = options.home ?? Deno.env.get("HOME") ?? "";
  const files = explicit.length > 0
    ? explicit
    : fromConfig.length > 0
    ? fromConfig
    : DEFAULT_IDENTITIES.map((n) => join(home, ".ssh", n));
  for (const file of files) {
    const key = await loadIdentity(file, { passphrase: options.passphrase });
    if (key === null) {
      if (explicit.includes(file)) throw new ConfigError(`Identity file "${file}" does not exist (check --identity)`);
      continue;
    }
    methods.push({ type: "publickey", key, label: `${file} (${key.type})` });
  }
  return methods;
}
