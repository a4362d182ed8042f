/**
 * The `[pull]` table of the TOML config: validation with errors that name the key.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** The keys a `[pull]` table may have. */
export const PULL_KEYS = [
  "host",
  "port",
  "user",
  "identity_file",
  "remote_dir",
  "local_dir",
  "known_hosts",
  "keep_last",
  "databases",
  "ssh_command",
  "ssh_config",
  "ssh_options",
] as const;

/** A validated `[pull]` table; every key optional. */
export interface PullTable {
  /** Server host (or ~/.ssh/config alias). */
  host?: string;
  /** SSH port. */
  port?: number;
  /** Login user. */
  user?: string;
  /** Private key file. */
  identityFile?: string;
  /** Directory on the server holding the backups. */
  remoteDir?: string;
  /** Local directory receiving them. */
  localDir?: string;
  /** known_hosts file. */
  knownHosts?: string;
  /** Newest local backups to keep per database; 0 keeps all. */
  keepLast?: number;
  /** Databases to pull; empty means all. */
  databases?: string[];
  /** The ssh binary (else `$SQLBK_SSH`, else `ssh` from PATH). */
  sshCommand?: string;
  /** An ssh config file, passed as `ssh -F`. */
  sshConfig?: string;
  /** More ssh `-o` settings, e.g. `["ProxyJump=bastion"]`. */
  sshOptions?: string[];
}

function _describe(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  if (Array.isArray(value)) return "an array";
  if (value !== null && typeof value === "object") return "a table";
  return String(value);
}

/**
 * Validates the raw `[pull]` table (as `loadConfig()` returns it in `pull`).
 *
 * @example
 * ```ts
 * const table = parsePullTable({ host: "db1", remote_dir: "/srv/backups", keep_last: 7 }, "sqlbk.toml");
 * table.keepLast; // 7
 * ```
 */
export function parsePullTable(raw: Record<string, unknown> | null, origin = "config"): PullTable {
  if (raw === null) return {};
  const fail = (msg: string): never => {
    throw new ConfigError(`${origin}: ${msg}`);
  };
  for (const key of Object.keys(raw)) {
    if (!(PULL_KEYS as readonly string[]).includes(key)) {
      fail(`unknown key "${key}" in [pull]; known keys: ${PULL_KEYS.join(", ")}`);
    }
  }
  const str = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "") {
      fail(`invalid "${key}" in [pull] ${_describe(v)}: expected a non-empty string`);
    }
    return v as string;
  };
  const int = (key: string, min: number, max: number): number | undefined => {
    let v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v === "bigint") v = Number(v);
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      fail(`invalid "${key}" in [pull] ${_describe(v)}: expected a whole number from ${min} to ${max}`);
    }
    return v as number;
  };
  const list = (key: string, example: string): string[] | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((d) => typeof d !== "string" || d === "")) {
      fail(`invalid "${key}" in [pull] ${_describe(v)}: expected an array of strings, e.g. ${example}`);
    }
    return v as string[];
  };
  return {
    host: str("host"),
    port: int("port", 1, 65535),
    user: str("user"),
    identityFile: str("identity_file"),
    remoteDir: str("remote_dir"),
    localDir: str("local_dir"),
    knownHosts: str("known_hosts"),
    keepLast: int("keep_last", 0, Number.MAX_SAFE_INTEGER),
    databases: list("databases", `["app", "auth"]`),
    sshCommand: str("ssh_command"),
    sshConfig: str("ssh_config"),
    sshOptions: list("ssh_options", `["ProxyJump=bastion.example.com", "Ciphers=aes128-gcm@openssh.com"]`),
  };
}
