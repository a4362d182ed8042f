/**
 * The SFTP transport: the system's OpenSSH client (`ssh -s host sftp`, see ssh_args.ts)
 * carries the connection, with OpenSSH's own host-key checks, keys, agent, certificates
 * and ssh_config; sqlbk's SFTP client speaks over its pipes. Every failure is one line.
 *
 * @module
 */

import { dirname } from "node:path";
import { ConfigError } from "../errors.ts";
import { clearLongTimer, type LongTimer, setLongTimeout } from "../timers.ts";
import { type Attributes, type DirEntry, FX, type ListLimits, SftpClient, SftpError } from "./sftp.ts";
import { aesFirstCiphers, sshArgs, type SshArgsOptions, sshBinary } from "./ssh_args.ts";
import { SshError } from "./ssh_error.ts";
import { printable } from "../printable.ts";
import { explainSshFailure, type FailureContext } from "./ssh_log.ts";
import { SshProcess } from "./ssh_process.ts";
import type { Target } from "./target.ts";

export { SshError, type SshErrorKind } from "./ssh_error.ts";

/** Options for {@link connectSftp}: the ssh command line's (ssh_args.ts) and these. */
export interface ConnectOptions extends SshArgsOptions {
  /** The ssh binary, when `$SQLBK_SSH` is not set. Default: `ssh` from PATH. */
  sshCommand?: string;
  /** Receives warnings (insecure mode, a newly recorded host key). Default: `console.error`. */
  onWarning?: (message: string) => void;
  /**
   * Put AES-GCM first in OpenSSH's default cipher list when no `Ciphers` is configured and
   * the CPU has AES instructions (see `aesFirstCiphers`). Default true.
   */
  preferAesGcm?: boolean;
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

const _S_IFMT = 0o170000;
const _S_IFREG = 0o100000;

/** The SFTP channel of a session (for the parallel downloader). */
export type SftpChannel = SftpClient;

/**
 * An open SFTP session over an `ssh` child process. Close it with
 * {@link SftpSession.close} (or `await using`).
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
  /** The cipher ssh negotiated (server to client), e.g. `aes128-gcm@openssh.com`, or `""` when unknown. */
  readonly cipher: string;
  #ssh: SshProcess;
  #closed = false;
  #lost: SshError | null = null;
  #lostListeners = new Set<(err: SshError) => void>();

  /** @internal */
  constructor(ssh: SshProcess, sftp: SftpChannel, label: string) {
    this.#ssh = ssh;
    this.sftp = sftp;
    this.label = label;
    this.cipher = ssh.log.cipher;
    // No reply in time, or a malformed one: the session is unusable; ssh is ended at once.
    sftp.onFatal((err) => {
      this._lose(this.#explain(err, "the SFTP session"));
      ssh.kill();
    });
  }

  /** @internal The connection ended: every waiting request fails with `err`. */
  _lose(err: SshError): void {
    if (this.#closed || this.#lost) return;
    this.#lost = err;
    for (const listener of this.#lostListeners) listener(err);
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

  /**
   * Lists a remote directory, at most `limits` (default `DEFAULT_LIST_LIMITS`: 100 000
   * entries, 32 MiB of names); a longer listing fails naming the limit.
   */
  list(dir: string, limits: ListLimits = {}): Promise<RemoteEntry[]> {
    return new Promise((resolve, reject) => {
      this.sftp.readdir(dir, (err: Error | undefined, list: DirEntry[]) => {
        if (err) return reject(this.mapError(err, `list remote directory "${dir}"`, "directory"));
        resolve(list.map((e) => ({
          name: e.filename,
          size: e.attrs.size ?? 0,
          mtime: e.attrs.mtime ?? 0,
          isFile: ((e.attrs.mode ?? 0) & _S_IFMT) === _S_IFREG,
        })));
      }, limits);
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
    if (err instanceof SftpError && err.failure) return this.#explain(err, action);
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
      return new SshError(
        "connection",
        `Connection to ${this.label} was lost during ${action}: ${printable(err.message)}`,
        {
          cause: err,
          retryable: true,
        },
      );
    }
    return new SshError("remote", `Cannot ${action} on ${this.label}: ${printable(err.message)}`, { cause: err });
  }

  /** Ends the connection now (the run was interrupted): every waiting request fails with `reason`. */
  abort(reason: SshError): void {
    this._lose(reason);
    this.#ssh.kill();
  }

  /** The one line for a failure of the client's own: a timeout, a malformed reply, a listing over its limits. */
  #explain(err: SftpError, action: string): SshError {
    if (err.failure === "timeout") {
      return new SshError(
        "timeout",
        `No reply from ${this.label} to ${action}: ${err.message} (the server stopped answering; raise --timeout if the link is slow)`,
        { cause: err, retryable: true },
      );
    }
    if (err.failure === "limit") {
      return new SshError(
        "remote",
        `Cannot ${action} on ${this.label}: it has ${err.message}, the limit (is it the right directory? a backup directory holds far fewer)`,
        { cause: err },
      );
    }
    return new SshError(
      "remote",
      `Cannot ${action} on ${this.label}: ${printable(err.message)} (the server does not speak SFTP correctly)`,
      { cause: err },
    );
  }

  /** Ends the SFTP session: closes ssh's stdin and waits for it to exit (killing it after 3 s). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lost) this.#ssh.kill(); // a stalled server would never answer the EOF
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
 * Starts `ssh -s host sftp` (OpenSSH verifies the host key, authenticates, applies
 * ssh_config) and completes the SFTP version exchange. Every failure is an
 * {@link SshError} with one line naming the host and a hint, or a ConfigError (exit 2)
 * when ssh is missing, may not run (Deno needs `--allow-run`), or rejects its options.
 * Unattended (stdin not a terminal), ssh never prompts and the whole handshake is bounded
 * by `timeoutMs`; on a terminal, ssh may ask for a passphrase.
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
  const warn = options.onWarning ?? ((m: string) => console.error(`warning: ${printable(m, Infinity)}`));
  const timeoutMs = options.timeoutMs ?? 30_000;
  const batch = options.batchMode ?? !Deno.stdin.isTerminal();
  const args = sshArgs({ ...options, batchMode: batch });
  const hostPort = `${options.host}${options.port !== undefined ? `:${options.port}` : ""}`;
  const ctx: FailureContext = {
    where: `"${hostPort}"`,
    label: `${options.user !== undefined ? `${options.user}@` : ""}${hostPort}`,
    timeoutMs,
    knownHostsFile: options.knownHostsFile,
    acceptNew: options.acceptNew,
  };
  if (options.insecureSkipHostKeyCheck) {
    warn(
      `--insecure-skip-host-key-check: the identity of ${ctx.where} is NOT verified; anyone able to intercept the connection can serve you forged backups`,
    );
  }
  if (options.acceptNew && options.knownHostsFile !== undefined && !options.insecureSkipHostKeyCheck) {
    // ssh records a new key only in a file whose directory exists.
    await Deno.mkdir(dirname(options.knownHostsFile), { recursive: true, mode: 0o700 }).catch(() => {}); // else ssh says why
  }
  const binary = sshBinary(options.sshCommand);
  const ciphers = options.preferAesGcm === false ? null : await aesFirstCiphers(binary, args);
  if (ciphers !== null) args.splice(args.length - 4, 0, "-o", ciphers);
  const ssh = SshProcess.spawn(binary, args, {
    // With the check skipped, ssh "adds" every key to /dev/null: not worth a warning.
    onWarning: (line) => options.insecureSkipHostKeyCheck && /Permanently added/.test(line) ? {} : warn(line),
  });
  let session: SftpSession | null = null;
  const labelOf = () =>
    ssh.log.authenticating ? printable(`${ssh.log.authenticating.user}@${ssh.log.authenticating.where}`) : ctx.label;
  ssh.onEnd((exit) => {
    if (session === null) return explainSshFailure(ssh.log, exit.code, ctx);
    const last = ssh.log.messages.filter((l) => !/^(Authenticated to|Transferred:|Bytes per second)/.test(l)).at(-1);
    const err = new SshError(
      /not responding|timed out/i.test(last ?? "") ? "timeout" : "connection",
      `Connection to ${session.label} was lost${last ? `: ${printable(last.replace(/^ssh: /, ""))}` : ""}`,
      { retryable: true },
    );
    session._lose(err);
    return err;
  });
  let timer: LongTimer | undefined;
  let timedOut = false;
  try {
    const started = SftpClient.start(ssh, { requestTimeoutMs: timeoutMs });
    const sftp = await (batch
      ? Promise.race([
        started,
        new Promise<never>((_, reject) =>
          timer = setLongTimeout(() => {
            timedOut = true;
            ssh.kill();
            reject(new Error("timeout"));
          }, timeoutMs + 1000)
        ),
      ])
      : started);
    session = new SftpSession(ssh, sftp, labelOf());
    return session;
  } catch (err) {
    if (!ssh.done) ssh.kill();
    await ssh.exited;
    if (timedOut) {
      throw new SshError(
        "timeout",
        `Cannot connect to ${ctx.where}: no SFTP session after ${
          timeoutMs / 1000
        }s (is the host reachable? raise --timeout if the link is slow)`,
        { retryable: true },
      );
    }
    if (err instanceof SshError || err instanceof ConfigError) throw err;
    // ssh ran, but what came back was not SFTP (a login shell printing text, say).
    throw new SshError(
      "remote",
      `Cannot start SFTP on ${labelOf()}: ${
        printable(err instanceof Error ? err.message : String(err))
      } (is the sftp subsystem enabled? does the login shell print text for non-interactive logins?)`,
      { cause: err },
    );
  } finally {
    clearLongTimer(timer);
  }
}
