/**
 * The SFTP transport: one SSH connection (ssh2) with host-key verification against
 * known_hosts, ssh-agent and identity-file authentication, and one SFTP channel; every
 * failure mapped to one clear line.
 *
 * @module
 */

import { join } from "node:path";
import { Buffer } from "node:buffer";
import ssh2 from "ssh2";
import { type AuthMethod, authMethods } from "./auth.ts";
import { loadSshConfig } from "./ssh_config.ts";
import type { Target } from "./target.ts";
import {
  addKnownHost,
  checkHostKey,
  fingerprint,
  hostKeyName,
  keyTypeLabel,
  keyTypeOf,
  readKnownHosts,
} from "./known_hosts.ts";

/** Why a connection or a remote operation failed. */
export type SshErrorKind =
  | "refused"
  | "unknown-host"
  | "timeout"
  | "auth"
  | "host-key"
  | "not-found"
  | "permission"
  | "connection"
  | "remote";

/**
 * A transport failure with a one-line message. `retryable` is true for a connection
 * that dropped after it was established (the pull retries those and resumes).
 *
 * @example
 * ```ts
 * try { await connectSftp({ host: "db1" }); } catch (err) {
 *   if (err instanceof SshError && err.kind === "host-key") console.error(err.message);
 * }
 * ```
 */
export class SshError extends Error {
  /** Always `"SshError"`. */
  override name = "SshError";
  /** What went wrong. */
  readonly kind: SshErrorKind;
  /** Whether reconnecting may help. */
  readonly retryable: boolean;
  /**
   * Builds the error.
   * @param kind what failed (connection, host key, authentication, ...)
   * @param message the one-line message
   * @param options `cause`, and `retryable` (a dropped connection that a retry may fix)
   */
  constructor(kind: SshErrorKind, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.retryable = options.retryable ?? false;
  }
}

/** Options for {@link connectSftp}. */
export interface ConnectOptions {
  /** Host as given: an alias from ~/.ssh/config, a name, or an address. Required. */
  host: string;
  /** Port. Default: ~/.ssh/config's `Port`, else 22. */
  port?: number;
  /** Login user. Default: ~/.ssh/config's `User`, else `$USER`. */
  user?: string;
  /** Identity files to try (after the agent). Default: ~/.ssh/config's, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa. */
  identityFiles?: string[];
  /** The known_hosts file. Default: `~/.ssh/known_hosts`. */
  knownHostsFile?: string;
  /** Record the key of a host not in known_hosts, like OpenSSH's `accept-new`. Default false. */
  acceptNew?: boolean;
  /** Skip host-key verification entirely (warns on every use). Default false. */
  insecureSkipHostKeyCheck?: boolean;
  /** Connection and handshake timeout in ms. Default 30000. */
  timeoutMs?: number;
  /** ssh-agent socket. Default `$SSH_AUTH_SOCK`; `null` disables it. */
  agentSocket?: string | null;
  /** Passphrase for encrypted identity files. Default `$SQLBK_SSH_PASSPHRASE`, else a prompt on a terminal. */
  passphrase?: string;
  /** ssh config file. Default `~/.ssh/config`. */
  sshConfigPath?: string;
  /** Home directory for `~`. Default `$HOME`. */
  home?: string;
  /** Cipher preference. Default {@link DEFAULT_CIPHERS}: chacha20-poly1305 first (fastest measured), then AES-GCM, AES-CTR. */
  ciphers?: string[];
  /** Receives warnings (insecure mode, a newly recorded host key). Default: `console.error`. */
  onWarning?: (message: string) => void;
}

/** A remote directory entry. */
export interface RemoteEntry {
  /** File name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Whether it is a regular file (not a link, directory or device). */
  isFile: boolean;
}

/**
 * Default cipher preference, chosen by measurement (bench/pull_bench.ts): under Deno,
 * ssh2's chacha20-poly1305 ran at ~150-180 MiB/s on loopback against OpenSSH 9.2, AES-GCM
 * at ~80-100 MiB/s, AES-CTR (+ HMAC) at ~115 MiB/s. All are AEAD or encrypt-then-MAC.
 */
export const DEFAULT_CIPHERS = [
  "chacha20-poly1305@openssh.com",
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
  "aes128-ctr",
  "aes256-ctr",
];

const _S_IFMT = 0o170000;
const _S_IFREG = 0o100000;

function _home(options: { home?: string }): string {
  return options.home ?? Deno.env.get("HOME") ?? "";
}

/** ssh2's SFTP channel object (ssh2 ships no types that Deno reads). */
// deno-lint-ignore no-explicit-any
export type SftpChannel = any;

/**
 * An open SFTP session. Close it with {@link SftpSession.close} (or `await using`).
 *
 * @example
 * ```ts
 * await using session = await connectSftp({ host: "db1.example.com" });
 * const entries = await session.list("/var/backups/app");
 * ```
 */
export class SftpSession implements AsyncDisposable {
  /** The underlying ssh2 SFTP channel (for the parallel downloader). */
  readonly sftp: SftpChannel;
  /** `user@host:port`, for messages. */
  readonly label: string;
  /** The negotiated cipher, e.g. `aes128-gcm@openssh.com`. */
  readonly cipher: string;
  #client: ssh2.Client;
  #closed = false;
  #lost: SshError | null = null;
  #lostListeners = new Set<(err: SshError) => void>();

  /** @internal */
  constructor(client: ssh2.Client, sftp: SftpChannel, label: string, cipher: string) {
    this.#client = client;
    this.sftp = sftp;
    this.label = label;
    this.cipher = cipher;
    const lost = (err?: Error) => {
      if (this.#closed || this.#lost) return;
      this.#lost = new SshError("connection", `Connection to ${label} was lost${err ? `: ${err.message}` : ""}`, {
        cause: err,
        retryable: true,
      });
      for (const listener of this.#lostListeners) listener(this.#lost);
    };
    client.on("error", lost);
    client.on("close", () => lost());
  }

  /** The error that ended the connection, if it ended. */
  get lostError(): SshError | null {
    return this.#lost;
  }

  /** Calls `listener` once if the connection is lost (at once if it already is); returns an unsubscribe function. */
  onLost(listener: (err: SshError) => void): () => void {
    if (this.#lost) {
      const err = this.#lost;
      queueMicrotask(() => listener(err));
      return () => {};
    }
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  /** Lists a remote directory. */
  list(dir: string): Promise<RemoteEntry[]> {
    return new Promise((resolve, reject) => {
      this.sftp.readdir(dir, (err: Error | undefined, list: { filename: string; attrs: ssh2.Attributes }[]) => {
        if (err) return reject(this.mapError(err, `list remote directory "${dir}"`, "directory"));
        resolve(list.map((e) => ({
          name: e.filename,
          size: e.attrs.size ?? 0,
          mtime: e.attrs.mtime ?? 0,
          isFile: ((e.attrs.mode ?? 0) & _S_IFMT) === _S_IFREG,
        })));
      });
    });
  }

  /** Stats a remote file (following links). */
  stat(path: string): Promise<{ size: number; mtime: number; isFile: boolean }> {
    return new Promise((resolve, reject) => {
      this.sftp.stat(path, (err: Error | undefined, attrs: ssh2.Attributes) => {
        if (err) return reject(this.mapError(err, `stat remote file "${path}"`, "file"));
        resolve({
          size: attrs.size ?? 0,
          mtime: attrs.mtime ?? 0,
          isFile: ((attrs.mode ?? 0) & _S_IFMT) === _S_IFREG,
        });
      });
    });
  }

  /** Reads a small remote file (a sidecar) as text; at most `maxBytes` (default 64 KiB). */
  async readText(path: string, maxBytes = 65536): Promise<string> {
    const handle = await this.open(path);
    try {
      const buf = Buffer.alloc(maxBytes);
      let off = 0;
      while (off < maxBytes) {
        const n = await new Promise<number>((resolve, reject) => {
          this.sftp.read(
            handle,
            buf,
            off,
            maxBytes - off,
            off,
            (err: (Error & { code?: number }) | undefined, nb: number) => {
              if (err) return reject(this.mapError(err, `read remote file "${path}"`, "file"));
              resolve(nb ?? 0);
            },
          );
        });
        if (n === 0) break;
        off += n;
      }
      return buf.subarray(0, off).toString("utf8");
    } finally {
      await this.closeHandle(handle).catch(() => {});
    }
  }

  /** Opens a remote file for reading; resolves to the SFTP handle. */
  open(path: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.sftp.open(path, "r", (err: Error | undefined, handle: Buffer) => {
        if (err) return reject(this.mapError(err, `open remote file "${path}"`, "file"));
        resolve(handle);
      });
    });
  }

  /** Closes a remote handle (gives up after 5 s: a dead channel never answers). */
  closeHandle(handle: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, 5000);
      this.sftp.close(handle, (err: Error | undefined) => {
        clearTimeout(timer);
        err ? reject(err) : resolve();
      });
    });
  }

  /** Turns an SFTP status error into an {@link SshError} with a one-line message. */
  mapError(err: Error & { code?: number | string }, action: string, what: "file" | "directory"): SshError {
    if (this.#lost) return this.#lost;
    if (err.code === 2) {
      return new SshError("not-found", `Cannot ${action} on ${this.label}: no such ${what}`, { cause: err });
    }
    if (err.code === 3) {
      return new SshError(
        "permission",
        `Cannot ${action} on ${this.label}: permission denied (check the remote user's access rights)`,
        { cause: err },
      );
    }
    if (/No response|not connected|closed|ended|ECONNRESET|EPIPE/i.test(err.message) || err.code === 7) {
      return new SshError("connection", `Connection to ${this.label} was lost during ${action}: ${err.message}`, {
        cause: err,
        retryable: true,
      });
    }
    return new SshError("remote", `Cannot ${action} on ${this.label}: ${err.message}`, { cause: err });
  }

  /** Ends the SFTP channel and the connection. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(), 2000);
      this.#client.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        this.sftp.end();
      } catch { /* already gone */ }
      this.#client.end();
    });
  }

  /** Same as {@link SftpSession.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects to a parsed target (`[user@]host:/dir` or `sftp://...`): the flags in
 * `options` win over the user and port written in the target.
 *
 * @example
 * ```ts
 * await using session = await connectTarget(parseTarget("backup@db1:/var/backups/app"));
 * ```
 */
export function connectTarget(target: Target, options: Omit<ConnectOptions, "host"> = {}): Promise<SftpSession> {
  return connectSftp({
    ...options,
    host: target.host,
    port: options.port ?? target.port,
    user: options.user ?? target.user,
  });
}

/**
 * Connects, verifies the host key, authenticates and opens an SFTP channel. Every failure
 * is an {@link SshError} (or a ConfigError for a bad identity file) with one line naming
 * the host and a hint.
 *
 * @example
 * ```ts
 * const session = await connectSftp({ host: "db1.example.com", user: "backup", timeoutMs: 10_000 });
 * try {
 *   console.log(await session.list("/var/backups/app"));
 * } finally {
 *   await session.close();
 * }
 * ```
 */
export async function connectSftp(options: ConnectOptions): Promise<SftpSession> {
  const home = _home(options);
  const sshConfig = await loadSshConfig(options.host, { path: options.sshConfigPath, home });
  const host = sshConfig.hostName;
  const port = options.port ?? sshConfig.port ?? 22;
  const user = options.user ?? sshConfig.user ?? Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "root";
  const label = `${user}@${host}:${port}`;
  const where = `"${host}:${port}"`;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const warn = options.onWarning ?? ((m: string) => console.error(`warning: ${m}`));
  const knownHostsFile = options.knownHostsFile ?? join(home, ".ssh", "known_hosts");
  const methods = await authMethods({
    identityFiles: options.identityFiles,
    configIdentityFiles: sshConfig.identityFiles,
    agentSocket: options.agentSocket,
    passphrase: options.passphrase,
    home,
  });
  if (methods.length === 0) {
    throw new SshError(
      "auth",
      `No way to authenticate to ${where}: no ssh-agent (SSH_AUTH_SOCK unset) and none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists (give --identity FILE)`,
    );
  }
  const entries = options.insecureSkipHostKeyCheck ? [] : await readKnownHosts(knownHostsFile);
  if (options.insecureSkipHostKeyCheck) {
    warn(
      `--insecure-skip-host-key-check: the identity of ${where} is NOT verified; anyone able to intercept the connection can serve you forged backups`,
    );
  }

  let hostKeyError: SshError | null = null;
  let acceptedLine: Promise<string> | null = null;
  const hostVerifier = (key: Buffer, verify: (ok: boolean) => void) => {
    if (options.insecureSkipHostKeyCheck) return verify(true);
    const blob = new Uint8Array(key);
    const type = keyTypeOf(blob);
    const fp = `${keyTypeLabel(type)} key fingerprint ${fingerprint(blob)}`;
    const name = hostKeyName(host, port);
    const result = checkHostKey(entries, blob, { host, port });
    if (result.status === "known") return verify(true);
    if (result.status === "revoked") {
      hostKeyError = new SshError(
        "host-key",
        `Host key of "${name}" is REVOKED in "${knownHostsFile}" line ${result.entry.line} (${fp}); refusing to connect`,
      );
      return verify(false);
    }
    if (result.status === "changed") {
      hostKeyError = new SshError(
        "host-key",
        `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for "${name}": it now offers ${fp}, but "${knownHostsFile}" line ${result.entry.line} has a different ${
          keyTypeLabel(type)
        } key. Someone could be intercepting the connection (man-in-the-middle), or the host key was replaced. Refusing to connect; if the change is expected, remove the old key with: ssh-keygen -R "${name}" -f "${knownHostsFile}"`,
      );
      return verify(false);
    }
    if (options.acceptNew) {
      acceptedLine = addKnownHost(knownHostsFile, blob, { host, port });
      acceptedLine.then(
        () => {
          warn(`Permanently added "${name}" (${fp}) to "${knownHostsFile}"`);
          verify(true);
        },
        (err) => {
          hostKeyError = new SshError(
            "host-key",
            `Cannot record the host key of "${name}" in "${knownHostsFile}": ${
              err instanceof Error ? err.message : err
            }`,
            { cause: err },
          );
          verify(false);
        },
      );
      return;
    }
    const others = result.otherTypes.length > 0
      ? ` (known_hosts has only ${result.otherTypes.join(", ")} keys for it)`
      : "";
    hostKeyError = new SshError(
      "host-key",
      `Host "${name}" is not in "${knownHostsFile}"${others}; it offers ${fp}. Compare it with the server's key (on the server: ssh-keygen -lf /etc/ssh/ssh_host_${
        type.replace(/^ssh-|-.*$/g, "")
      }_key.pub), then run again with --accept-new to record it`,
    );
    verify(false);
  };

  const tried: string[] = [];
  let queue: AuthMethod[] = [...methods];
  const authHandler = (
    _methodsLeft: string[] | null,
    _partial: boolean | null,
    next: (auth: unknown) => void,
  ) => {
    const method = queue.shift();
    if (!method) return next(false);
    tried.push(method.label);
    if (method.type === "agent") next({ type: "agent", username: user, agent: method.socket });
    else next({ type: "publickey", username: user, key: method.key });
  };

  const client = new ssh2.Client();
  let cipher = "";
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error & { code?: string; level?: string }) => {
        if (settled) return;
        settled = true;
        reject(_mapConnectError(err, { where, label, timeoutMs, tried, hostKeyError }));
      };
      const timer = setTimeout(
        () => fail(Object.assign(new Error("Timed out while waiting for handshake"), { level: "client-timeout" })),
        timeoutMs,
      );
      client.once("ready", () => {
        clearTimeout(timer);
        settled = true;
        resolve();
      });
      client.on("error", (err: Error) => {
        clearTimeout(timer);
        fail(err);
      });
      client.once("close", () => {
        clearTimeout(timer);
        fail(new Error("Connection closed by the server during the handshake"));
      });
      client.on("handshake", (neg: { cs: { cipher: string } }) => {
        cipher = neg.cs.cipher;
      });
      try {
        client.connect({
          host,
          port,
          username: user,
          readyTimeout: timeoutMs,
          hostVerifier,
          authHandler,
          keepaliveInterval: 15_000,
          keepaliveCountMax: 3,
          algorithms: { cipher: options.ciphers ?? DEFAULT_CIPHERS } as ssh2.Algorithms,
        } as ssh2.ConnectConfig);
        // Small SFTP requests must not wait for Nagle's algorithm and delayed ACKs (~40 ms each).
        client.setNoDelay(true);
      } catch (err) {
        fail(err as Error);
      }
    });
    if (acceptedLine) await acceptedLine;
    const sftp = await new Promise<SftpChannel>((resolve, reject) => {
      client.sftp((err: Error | undefined, sftp: SftpChannel) => {
        if (err) {
          reject(
            new SshError("remote", `Cannot start SFTP on ${label}: ${err.message} (is the sftp subsystem enabled?)`),
          );
        } else resolve(sftp);
      });
    });
    return new SftpSession(client, sftp, label, cipher);
  } catch (err) {
    queue = [];
    client.end();
    throw err;
  }
}

function _mapConnectError(
  err: Error & { code?: string; level?: string },
  ctx: { where: string; label: string; timeoutMs: number; tried: string[]; hostKeyError: SshError | null },
): SshError {
  if (ctx.hostKeyError) return ctx.hostKeyError;
  const code = err.code ?? "";
  if (code === "ECONNREFUSED") {
    return new SshError(
      "refused",
      `Cannot connect to ${ctx.where}: connection refused (is sshd running there, and is the port right? use --port or sftp://host:PORT/dir)`,
      { cause: err },
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME" || /getaddrinfo/i.test(err.message)) {
    return new SshError(
      "unknown-host",
      `Cannot connect to ${ctx.where}: unknown host name (check the spelling, DNS, or a Host alias in ~/.ssh/config)`,
      { cause: err },
    );
  }
  if (err.level === "client-timeout" || code === "ETIMEDOUT") {
    return new SshError(
      "timeout",
      `Cannot connect to ${ctx.where}: timed out after ${
        ctx.timeoutMs / 1000
      }s (is the host reachable? raise --timeout if the link is slow)`,
      { cause: err },
    );
  }
  if (err.level === "client-authentication") {
    return new SshError(
      "auth",
      `Authentication as ${ctx.label} was rejected; tried: ${
        ctx.tried.length > 0 ? ctx.tried.join(", ") : "nothing"
      } (is the public key in the server's authorized_keys? give another with --identity FILE)`,
      { cause: err },
    );
  }
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    return new SshError("connection", `Cannot connect to ${ctx.where}: host unreachable`, { cause: err });
  }
  return new SshError("connection", `Cannot connect to ${ctx.where}: ${err.message}`, { cause: err });
}
