/**
 * The SFTP transport: one SSH connection (src/pull/ssh/) with host-key verification
 * against known_hosts, ssh-agent and identity-file authentication, and one SFTP channel;
 * every failure mapped to one clear line.
 *
 * @module
 */

import { join } from "node:path";
import { authMethods } from "./auth.ts";
import { SshConnection, SshProtocolError } from "./ssh/connection.ts";
import { GCM_CIPHERS, gcmBackend } from "./ssh/gcm.ts";
import { agentSigners, algorithmsForKeyType, fileSigner, HOST_KEY_ALGORITHMS } from "./ssh/keys.ts";
import { type Attributes, type DirEntry, FX, SftpClient } from "./ssh/sftp.ts";
import { loadSshConfig } from "./ssh_config.ts";
import type { Target } from "./target.ts";
import {
  addKnownHost,
  checkHostKey,
  fingerprint,
  hostKeyName,
  keyTypeLabel,
  keyTypeOf,
  knownKeyTypes,
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
  /** Cipher preference, a subset of {@link DEFAULT_CIPHERS} (AES-GCM, 128 then 256 bits). */
  ciphers?: string[];
  /** The AES-GCM implementation: `libcrypto` (OpenSSL over FFI) or `webcrypto`. Default: libcrypto when it loads. */
  cryptoBackend?: "libcrypto" | "webcrypto";
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
 * Default cipher preference: AES-GCM, the AEAD cipher OpenSSH has offered since 6.2 and
 * the one libcrypto runs with hardware AES (see src/pull/ssh/gcm.ts).
 */
export const DEFAULT_CIPHERS: readonly string[] = GCM_CIPHERS;

const _S_IFMT = 0o170000;
const _S_IFREG = 0o100000;

function _home(options: { home?: string }): string {
  return options.home ?? Deno.env.get("HOME") ?? "";
}

/** The SFTP channel of a session (for the parallel downloader). */
export type SftpChannel = SftpClient;

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
  /** The SFTP channel (for the parallel downloader). */
  readonly sftp: SftpChannel;
  /** `user@host:port`, for messages. */
  readonly label: string;
  /** The negotiated cipher, e.g. `aes128-gcm@openssh.com`. */
  readonly cipher: string;
  /** Which crypto runs the cipher: `libcrypto` (hardware AES) or `webcrypto`. */
  readonly backend: string;
  #ssh: SshConnection;
  #closed = false;
  #lost: SshError | null = null;
  #lostListeners = new Set<(err: SshError) => void>();
  #keepalive: ReturnType<typeof setInterval>;

  /** @internal */
  constructor(ssh: SshConnection, sftp: SftpChannel, label: string) {
    this.#ssh = ssh;
    this.sftp = sftp;
    this.label = label;
    this.cipher = ssh.cipher;
    this.backend = ssh.backend;
    const lost = (err?: Error) => {
      if (this.#closed || this.#lost) return;
      this.#lost = new SshError("connection", `Connection to ${label} was lost${err ? `: ${err.message}` : ""}`, {
        cause: err,
        retryable: true,
      });
      for (const listener of this.#lostListeners) listener(this.#lost);
    };
    ssh.onClose(lost);
    // A keepalive after 15 s of silence; a connection silent for 45 s is dead.
    this.#keepalive = setInterval(() => {
      const idle = ssh.idleMs;
      if (idle >= _KEEPALIVE_MS * _KEEPALIVE_COUNT) {
        lost(new Error(`no answer for ${Math.round(idle / 1000)}s`));
        ssh.close().catch(() => {});
      } else if (idle >= _KEEPALIVE_MS) ssh.keepalive();
    }, _KEEPALIVE_MS);
    Deno.unrefTimer(Number(this.#keepalive));
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
      this.sftp.readdir(dir, (err: Error | undefined, list: DirEntry[]) => {
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
      this.sftp.stat(path, (err: Error | undefined, attrs: Attributes) => {
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
      const buf = new Uint8Array(maxBytes);
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
      return new TextDecoder().decode(buf.subarray(0, off));
    } finally {
      await this.closeHandle(handle).catch(() => {});
    }
  }

  /** Opens a remote file for reading; resolves to the SFTP handle. */
  open(path: string): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.sftp.open(path, "r", (err: Error | undefined, handle: Uint8Array) => {
        if (err) return reject(this.mapError(err, `open remote file "${path}"`, "file"));
        resolve(handle);
      });
    });
  }

  /** Closes a remote handle (gives up after 5 s: a dead channel never answers). */
  closeHandle(handle: Uint8Array): Promise<void> {
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
    if (err.code === FX.NO_SUCH_FILE) {
      return new SshError("not-found", `Cannot ${action} on ${this.label}: no such ${what}`, { cause: err });
    }
    if (err.code === FX.PERMISSION_DENIED) {
      return new SshError(
        "permission",
        `Cannot ${action} on ${this.label}: permission denied (check the remote user's access rights)`,
        { cause: err },
      );
    }
    if (err.code === FX.CONNECTION_LOST) {
      return new SshError("connection", `Connection to ${this.label} was lost during ${action}: ${err.message}`, {
        cause: err,
        retryable: true,
      });
    }
    return new SshError("remote", `Cannot ${action} on ${this.label}: ${err.message}`, { cause: err });
  }

  /** Ends the SFTP channel and the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepalive);
    await this.#ssh.close();
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
  const verifyHostKey = async (blob: Uint8Array): Promise<boolean> => {
    if (options.insecureSkipHostKeyCheck) return true;
    const type = keyTypeOf(blob);
    const fp = `${keyTypeLabel(type)} key fingerprint ${fingerprint(blob)}`;
    const name = hostKeyName(host, port);
    const result = checkHostKey(entries, blob, { host, port });
    if (result.status === "known") return true;
    if (result.status === "revoked") {
      hostKeyError = new SshError(
        "host-key",
        `Host key of "${name}" is REVOKED in "${knownHostsFile}" line ${result.entry.line} (${fp}); refusing to connect`,
      );
      return false;
    }
    if (result.status === "changed") {
      hostKeyError = new SshError(
        "host-key",
        `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for "${name}": it now offers ${fp}, but "${knownHostsFile}" line ${result.entry.line} has a different ${
          keyTypeLabel(type)
        } key. Someone could be intercepting the connection (man-in-the-middle), or the host key was replaced. Refusing to connect; if the change is expected, remove the old key with: ssh-keygen -R "${name}" -f "${knownHostsFile}"`,
      );
      return false;
    }
    if (options.acceptNew) {
      try {
        await addKnownHost(knownHostsFile, blob, { host, port });
      } catch (err) {
        hostKeyError = new SshError(
          "host-key",
          `Cannot record the host key of "${name}" in "${knownHostsFile}": ${err instanceof Error ? err.message : err}`,
          { cause: err },
        );
        return false;
      }
      warn(`Permanently added "${name}" (${fp}) to "${knownHostsFile}"`);
      return true;
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
    return false;
  };

  // Like OpenSSH, ask first for the key types known_hosts already holds for this host, so
  // a server with several host keys presents one that can be checked.
  const knownTypes = new Set(
    knownKeyTypes(entries, { host, port }).flatMap((t) => algorithmsForKeyType(t)),
  );
  const hostKeyAlgorithms = [
    ...HOST_KEY_ALGORITHMS.filter((a) => knownTypes.has(a)),
    ...HOST_KEY_ALGORITHMS.filter((a) => !knownTypes.has(a)),
  ];

  // Before connecting, so a bad SQLBK_LIBCRYPTO is a configuration error, not a lost connection.
  const cryptoBackend = options.cryptoBackend ?? gcmBackend();
  const tried: string[] = [];
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    const connecting = SshConnection.connect({
      host,
      port,
      user,
      verifyHostKey,
      auth: methods.map((m) => ({
        label: m.label,
        signers: m.type === "agent" ? () => agentSigners(m.socket) : () => Promise.resolve([fileSigner(m.key)]),
      })),
      onAuthTry: (label) => tried.push(label),
      ciphers: options.ciphers ?? DEFAULT_CIPHERS,
      hostKeyAlgorithms,
      signal: controller.signal,
      cryptoBackend,
    });
    // Deno.connect itself cannot be aborted: the timer settles the wait, and a socket
    // that connects later is closed.
    const ssh = await new Promise<SshConnection>((resolve, reject) => {
      connecting.then(resolve, reject);
      controller.signal.addEventListener("abort", () => {
        reject(Object.assign(new Error("Timed out while waiting for handshake"), { level: "client-timeout" }));
        connecting.then((late) => late.close(), () => {});
      }, { once: true });
    });
    let sftp: SftpClient;
    try {
      sftp = await SftpClient.start(ssh);
    } catch (err) {
      await ssh.close();
      throw new SshError(
        "remote",
        `Cannot start SFTP on ${label}: ${err instanceof Error ? err.message : err} (is the sftp subsystem enabled?)`,
        { cause: err },
      );
    }
    return new SftpSession(ssh, sftp, label);
  } catch (err) {
    if (err instanceof SshError) throw err;
    const e = err as Error & { code?: string; level?: string };
    if (timedOut) e.level = "client-timeout";
    throw _mapConnectError(e, { where, label, timeoutMs, tried, hostKeyError });
  } finally {
    clearTimeout(timer);
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
  if (
    code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME" ||
    /getaddrinfo|lookup address|Name or service not known|nodename nor servname/i.test(err.message)
  ) {
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
  if (err instanceof SshProtocolError && err.stage === "host-key") {
    return new SshError("host-key", `Host key of ${ctx.where} was rejected`, { cause: err });
  }
  if (err instanceof SshProtocolError && err.stage === "auth") {
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

const _KEEPALIVE_MS = 15_000;
const _KEEPALIVE_COUNT = 3;
