/**
 * The `ssh` child process of a pull: spawned with the arguments of ssh_args.ts, its stdin
 * and stdout are the SFTP byte channel and its stderr goes to an {@link SshLog}.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { ByteChannel, ChannelSink } from "./sftp.ts";
import { growChildPipe } from "./pipe_size.ts";
import { SshLog } from "./ssh_log.ts";

/** Bytes asked of the pipe per read (at most what the pipe holds: 64 KiB, or 1 MiB once grown). */
const _READ_SIZE = 256 * 1024;

/** How ssh ended. */
export interface SshExit {
  /** Its exit code (255 for ssh's own failures), or null when a signal ended it. */
  code: number | null;
}

/**
 * A running `ssh -s host sftp`: a {@link ByteChannel} over its pipes.
 *
 * @example
 * ```ts
 * const ssh = SshProcess.spawn("ssh", sshArgs({ host: "db1" }));
 * const sftp = await SftpClient.start(ssh);
 * ```
 */
export class SshProcess implements ByteChannel {
  /** What ssh said on stderr. */
  readonly log: SshLog;
  /** Settles when ssh has exited and its stderr is read. */
  readonly exited: Promise<SshExit>;
  /** The size of the pipe from ssh's stdout once grown (pipe_size.ts), or 0 when it keeps the system's. */
  readonly stdoutPipeBytes: number;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #sink: ChannelSink | null = null;
  #closing = false;
  #done = false;
  #onEnd: ((exit: SshExit) => Error) | null = null;

  private constructor(child: Deno.ChildProcess, log: SshLog) {
    this.#child = child;
    this.log = log;
    this.stdoutPipeBytes = growChildPipe(child.pid, 1);
    this.#writer = child.stdin.getWriter();
    const stderr = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of child.stderr) log.push(decoder.decode(chunk, { stream: true }));
      } catch { /* the pipe broke: ssh is gone */ }
      log.end();
    })();
    this.exited = child.status.then(async (s) => {
      // A ControlPersist master may keep stderr open: do not wait on it for long.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([stderr, new Promise((r) => timer = setTimeout(r, 2000))]);
      clearTimeout(timer);
      this.#done = true;
      return { code: s.signal ? null : s.code };
    });
  }

  /**
   * Starts `binary` with `args`. A binary that is missing, or that Deno may not run
   * (no `--allow-run`), is a ConfigError (exit 2) saying what to do.
   */
  static spawn(binary: string, args: string[], options: { onWarning?: (line: string) => void } = {}): SshProcess {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(binary, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new ConfigError(
          `Cannot run the OpenSSH client "${binary}": not found${
            binary.includes("/") ? "" : " on PATH"
          } (install it: apt-get install openssh-client, dnf install openssh-clients, brew install openssh, or Windows' optional feature "OpenSSH Client"; or set SQLBK_SSH to its path)`,
          { cause: err },
        );
      }
      if (err instanceof Deno.errors.PermissionDenied) {
        // The OS refused to run it (EACCES): not an executable file, or not one this user
        // may run. Deno's own permission is NotCapable, below.
        throw new ConfigError(
          `Cannot run the OpenSSH client "${binary}": permission denied by the system: it is not an executable ` +
            `file this user may run (point SQLBK_SSH at the ssh program, e.g. /usr/bin/ssh, or unset it)`,
          { cause: err },
        );
      }
      if (err instanceof Deno.errors.NotCapable) {
        throw new ConfigError(
          `Cannot run the OpenSSH client "${binary}": ${
            err.message.split("\n")[0]
          } (sqlbk pulls through ssh: grant Deno --allow-run, or --allow-run=${binary})`,
          { cause: err },
        );
      }
      throw err;
    }
    return new SshProcess(child, new SshLog(options.onWarning));
  }

  /** The process id of ssh. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Whether ssh has exited. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Sets how the end of ssh's output becomes the error passed to the sink's `closed`
   * (the transport builds it from the exit code and stderr).
   */
  onEnd(explain: (exit: SshExit) => Error): void {
    this.#onEnd = explain;
  }

  /**
   * Writes to ssh's stdin. A failed write (a broken pipe: ssh is exiting) is not the error
   * to report: the end of ssh's stdout follows, with the error built from what ssh said.
   */
  write(bytes: Uint8Array): Promise<void> {
    return this.#writer.write(bytes).catch(() => {});
  }

  /** Delivers ssh's stdout to `sink`, read straight into one reused buffer. */
  receive(sink: ChannelSink): void {
    this.#sink = sink;
    this.#pump().catch(() => {});
  }

  async #pump(): Promise<void> {
    const reader = this.#child.stdout.getReader({ mode: "byob" });
    let buf = new Uint8Array(_READ_SIZE);
    let failure: unknown = null;
    try {
      for (;;) {
        const { value, done } = await reader.read(buf);
        if (done || !value) break;
        this.#sink!.data(value);
        buf = new Uint8Array(value.buffer);
      }
    } catch (err) {
      failure = err;
    }
    const exit = await this.exited;
    const err = this.#closing ? new Error("closed") : this.#onEnd?.(exit) ??
      new Error(`ssh ended (exit ${exit.code})${failure ? `: ${failure}` : ""}`);
    this.#sink!.closed(err);
  }

  /** Ends stdin (ssh then closes the session); ssh is killed when it does not exit within 3 s. */
  async close(): Promise<void> {
    this.#closing = true;
    // Not awaited: a stopped server leaves the pipe full, and the close would wait forever.
    this.#writer.close().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const quit = await Promise.race([
      this.exited.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), 3000)),
    ]);
    clearTimeout(timer);
    if (!quit) this.kill();
    await this.exited;
  }

  /** Ends ssh now (SIGTERM): for a connection that stopped answering. */
  kill(): void {
    if (this.#done) return;
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already gone */ }
  }
}
