/**
 * Pull targets: `[user@]host:/remote/dir` (scp style) and
 * `sftp://[user@]host[:port]/remote/dir`.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** A parsed target. */
export interface Target {
  /** The host as written (an alias from ~/.ssh/config, a name or an address). */
  host: string;
  /** The login user, when given. */
  user?: string;
  /** The port, when given (only the sftp:// form carries one). */
  port?: number;
  /** The remote directory; relative paths are relative to the login directory. */
  remoteDir: string;
}

const _HINT = `expected [user@]host:/remote/dir or sftp://[user@]host[:port]/remote/dir`;

function _checkHost(host: string, text: string): string {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare === "" || /[\s/@]/.test(bare)) throw new ConfigError(`Invalid target "${text}": bad host name; ${_HINT}`);
  return bare;
}

/**
 * Parses a target. Throws {@link ConfigError} (exit 2) naming the value when it is neither form.
 *
 * @example
 * ```ts
 * parseTarget("backup@db1.example.com:/var/backups/app");
 * // { host: "db1.example.com", user: "backup", remoteDir: "/var/backups/app" }
 * parseTarget("sftp://db1:2222/srv/backups").port; // 2222
 * ```
 */
export function parseTarget(text: string): Target {
  if (/^sftp:\/\//i.test(text)) {
    const m = /^sftp:\/\/(?:[^@/]*@)?(\[[^\]]*\]|[^:/]*)(?::(\d*))?/i.exec(text)!;
    const host = _checkHost(m[1], text);
    let port: number | undefined;
    if (m[2] !== undefined) {
      port = Number(m[2]);
      if (m[2] === "" || port < 1 || port > 65535) {
        throw new ConfigError(`Invalid target "${text}": port "${m[2]}" is not 1-65535; ${_HINT}`);
      }
    }
    let url: URL;
    try {
      url = new URL(text.replace(/^sftp:/i, "http:"));
    } catch {
      throw new ConfigError(`Invalid target "${text}": not a valid URL; ${_HINT}`);
    }
    if (url.search || url.hash || url.password) {
      throw new ConfigError(`Invalid target "${text}": no query, fragment or password allowed; ${_HINT}`);
    }
    const user = url.username ? decodeURIComponent(url.username) : undefined;
    let remoteDir = decodeURIComponent(url.pathname);
    if (remoteDir.startsWith("/~/")) remoteDir = remoteDir.slice(3);
    if (remoteDir === "" || remoteDir === "/~") remoteDir = ".";
    return { host, user, port, remoteDir };
  }
  const m = /^(?:([^@/:]+)@)?(\[[^\]]+\]|[^@/:\[\]]+):(.*)$/.exec(text);
  if (!m) throw new ConfigError(`Invalid target "${text}": ${_HINT}`);
  const host = _checkHost(m[2], text);
  return { host, user: m[1], remoteDir: m[3] === "" ? "." : m[3] };
}

/**
 * Whether `text` looks like a remote target rather than a local path: `sftp://…`, or
 * `host:…` with no slash before the colon.
 *
 * @example
 * ```ts
 * isRemoteTarget("db1:/srv/backups"); // true
 * isRemoteTarget("./backups"); // false
 * ```
 */
export function isRemoteTarget(text: string): boolean {
  if (/^sftp:\/\//i.test(text)) return true;
  return /^(?:[^@/:]+@)?(\[[^\]]+\]|[^@/:\[\]]{2,}):/.test(text);
}
