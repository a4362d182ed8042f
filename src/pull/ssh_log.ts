/**
 * What the OpenSSH client said on stderr (run with `-v`), and the one-line error a failed
 * `ssh` turns into. ssh exits 255 for its own failures, so the kind of failure comes from
 * its messages: refused, unknown host name, timeout, host key unknown, changed or revoked,
 * authentication rejected, a bad option. Every piece of server-supplied text is escaped.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { SshError } from "./ssh_error.ts";
import { printable } from "../printable.ts";

const _MAX_LINES = 200;
const _MAX_LINE = 2000;

/** The facts gathered from ssh's stderr. */
export class SshLog {
  /** The server's host key, from `debug1: Server host key: TYPE SHA256:...`. */
  hostKey: { type: string; fingerprint: string } | null = null;
  /** `host:port` and user, from `debug1: Authenticating to HOST:PORT as 'USER'`. */
  authenticating: { where: string; user: string } | null = null;
  /** The keys ssh offered (paths, or agent key comments). */
  readonly offered: string[] = [];
  /** Keys the server accepted whose private half ssh could not use (encrypted, unattended). */
  readonly acceptedUnusable: string[] = [];
  /** The negotiated cipher (server to client). */
  cipher = "";
  /** Whether authentication succeeded. */
  authenticated = false;
  /** ssh's own messages (not its debug lines), last {@link _MAX_LINES}. */
  readonly messages: string[] = [];
  #partial = "";
  #warn: (line: string) => void;

  /** @param onWarning receives ssh's `Warning: ...` lines (escaped) as they arrive */
  constructor(onWarning: (line: string) => void = () => {}) {
    this.#warn = onWarning;
  }

  /** Feeds decoded stderr text. */
  push(text: string): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop()!.slice(0, _MAX_LINE);
    for (const line of lines) this.#line(line.replace(/\r$/, "").slice(0, _MAX_LINE));
  }

  /** Ends the input (a last line without a newline). */
  end(): void {
    if (this.#partial !== "") this.#line(this.#partial);
    this.#partial = "";
  }

  #line(line: string): void {
    let m: RegExpExecArray | null;
    if (line.startsWith("debug1: ")) {
      const d = line.slice(8);
      if ((m = /^Server host (?:key|certificate): (\S+) (SHA256:[^\s,]+)/.exec(d))) {
        this.hostKey = { type: m[1], fingerprint: m[2] };
      } else if ((m = /^Authenticating to (\S+) as '(.*)'$/.exec(d))) this.authenticating = { where: m[1], user: m[2] };
      else if ((m = /^Offering public key: (.+?) \S+ SHA256:\S+/.exec(d))) this.offered.push(m[1]);
      else if ((m = /^Server accepts key: (.+?) \S+ SHA256:\S+/.exec(d))) this.acceptedUnusable.push(m[1]);
      else if ((m = /^kex: server->client cipher: (\S+)/.exec(d))) this.cipher = m[1];
      return;
    }
    if (line.startsWith("debug") || line.trim() === "") return;
    if (line.startsWith("Authenticated to ")) {
      this.authenticated = true;
      this.acceptedUnusable.length = 0;
    }
    if (/^Warning: Permanently added/.test(line) && this.hostKey) {
      this.#warn(`${printable(line.slice(9).replace(/\.$/, ""))}, key fingerprint ${this.hostKey.fingerprint}`);
    } else if (/^Warning: /.test(line)) this.#warn(printable(line.slice(9)));
    else if (/^Failed to add the host/.test(line)) this.#warn(printable(line));
    this.messages.push(line);
    if (this.messages.length > _MAX_LINES) this.messages.shift();
  }

  /** Whether any of ssh's own messages matches `re`; returns the match. */
  find(re: RegExp): RegExpExecArray | null {
    for (const line of this.messages) {
      const m = re.exec(line);
      if (m) return m;
    }
    return null;
  }
}

/** What a message about a failed connection names. */
export interface FailureContext {
  /** `"host:port"` (or the host alone), quoted, for messages. */
  where: string;
  /** `user@host:port`, for messages. */
  label: string;
  /** The connect timeout in ms. */
  timeoutMs: number;
  /** The --known-hosts file, if one was given. */
  knownHostsFile?: string;
  /** Whether --accept-new was given. */
  acceptNew?: boolean;
}

function _keyLabel(type: string): string {
  const cert = /-cert-/.test(type) ? " certificate," : "";
  if (/ed25519/i.test(type)) return `ED25519${cert}`;
  if (/ecdsa/i.test(type)) return `ECDSA${cert}`;
  if (/rsa/i.test(type)) return `RSA${cert}`;
  if (/dss/i.test(type)) return `DSA${cert}`;
  return type.toUpperCase();
}

/**
 * Turns a failed `ssh` (its exit code and what it said) into one error: an SshError with a
 * kind and a hint, or a ConfigError (exit 2) for options or a config file ssh rejected.
 * `retryable` marks the failures a retry may fix (refused, timed out, dropped).
 *
 * @example
 * ```ts
 * const log = new SshLog();
 * log.push("ssh: connect to host 127.0.0.1 port 1: Connection refused\n");
 * explainSshFailure(log, 255, { where: '"127.0.0.1:1"', label: "me@127.0.0.1:1", timeoutMs: 30000 }).kind; // "refused"
 * ```
 */
export function explainSshFailure(log: SshLog, code: number | null, ctx: FailureContext): SshError | ConfigError {
  const where = log.authenticating ? `"${printable(log.authenticating.where)}"` : ctx.where;
  const label = log.authenticating ? `${log.authenticating.user}@${log.authenticating.where}` : ctx.label;
  let m: RegExpExecArray | null;
  const kh = ctx.knownHostsFile !== undefined ? `"${ctx.knownHostsFile}"` : "known_hosts";
  const fp = log.hostKey ? `${_keyLabel(log.hostKey.type)} key fingerprint ${log.hostKey.fingerprint}` : "";

  if ((m = log.find(/Could not resolve hostname (\S+): (.*)$/))) {
    return new SshError(
      "unknown-host",
      `Cannot connect to "${printable(m[1])}": unknown host name (${
        printable(m[2])
      }; check the spelling, DNS, or a Host alias in your ssh config)`,
    );
  }
  if (log.find(/Connection refused/)) {
    return new SshError(
      "refused",
      `Cannot connect to ${where}: connection refused (is sshd running there, and is the port right? use --port or sftp://host:PORT/dir)`,
      { retryable: true },
    );
  }
  if (log.find(/REMOTE HOST IDENTIFICATION HAS CHANGED/)) {
    const offending = log.find(/^Offending (\S+) key in (.+):(\d+)$/);
    const name = log.find(/^Host key for (\S+) has changed/)?.[1] ?? "";
    const sent = log.find(/^SHA256:\S+?(?=\.?$)/)?.[0];
    const sentType = log.find(/^The fingerprint for the (\S+) key sent by the remote host is/)?.[1];
    const offers = sent ? `${sentType ?? "its"} key fingerprint ${sent}` : fp || "another key";
    const file = offending ? `"${offending[2]}" line ${offending[3]} has ${offending[1]} key` : `${kh} has another key`;
    return new SshError(
      "host-key",
      // One prefix: the line already starts "error:", so ssh's "WARNING:" is dropped.
      `The host key of "${
        printable(name)
      }" has changed (ssh: REMOTE HOST IDENTIFICATION HAS CHANGED): it now offers ${offers}, but ${file}${
        offending && sentType && offending[1] !== sentType
          ? " (a key of a new type for a known host is a change too)"
          : ""
      }. Someone could be intercepting the connection (man-in-the-middle), or the host key was replaced. Refusing to connect${
        ctx.acceptNew ? " (--accept-new never replaces a known key)" : ""
      }; if the change is expected, remove the old key with: ssh-keygen -R "${printable(name)}"${
        offending ? ` -f "${offending[2]}"` : ""
      }`,
    );
  }
  if ((m = log.find(/REVOKED|revoked key|Host key .* revoked/i))) {
    return new SshError(
      "host-key",
      `Host key of ${where} is REVOKED in ${kh}${fp ? ` (${fp})` : ""}; refusing to connect`,
    );
  }
  if ((m = log.find(/^No (\S+) host key is known for (\S+) and you have requested strict checking/))) {
    return new SshError(
      "host-key",
      `Host "${printable(m[2])}" is not in ${kh}; it offers ${
        fp || `an ${m[1]} key`
      }. Compare it with the server's key (on the server: ssh-keygen -lf /etc/ssh/ssh_host_${
        m[1].toLowerCase()
      }_key.pub), then run again with --accept-new to record it`,
    );
  }
  if (log.find(/Host key verification failed|host key .* (mismatch|not verified)|Certificate invalid/i)) {
    const last = log.find(/Certificate invalid.*|.*host key.*/i)?.[0] ?? "Host key verification failed";
    return new SshError("host-key", `Host key of ${where} was rejected: ${printable(last)}${fp ? ` (${fp})` : ""}`);
  }
  if ((m = log.find(/Permission denied \((.*)\)/)) || log.find(/Too many authentication failures/)) {
    const unusable = log.acceptedUnusable.length > 0
      ? `; the server accepts ${
        log.acceptedUnusable.map((k) => printable(k)).join(", ")
      } but ssh could not use it (an encrypted key needs its passphrase: unattended runs use ssh-agent, ssh-add the key)`
      : "";
    return new SshError(
      "auth",
      `Authentication as ${printable(label)} was rejected; tried: ${
        log.offered.length > 0 ? log.offered.map((k) => printable(k)).join(", ") : "no key"
      }${
        m ? ` (server allows: ${printable(m[1])})` : ""
      }${unusable} (is the public key in the server's authorized_keys? give another with --identity FILE or load it into ssh-agent)`,
    );
  }
  if ((m = log.find(/^Unable to negotiate with (?:\S+ port \d+: )?(.*)$/))) {
    return new SshError(
      "connection",
      `Cannot connect to ${where}: ssh and the server have no algorithm in common: ${
        printable(m[1])
      } (allow one on either side: Ciphers, KexAlgorithms, HostKeyAlgorithms or MACs in the ssh config or ssh_options)`,
    );
  }
  if (log.find(/timed out|Operation timed out|not responding/i)) {
    return new SshError(
      "timeout",
      `Cannot connect to ${where}: timed out after ${
        ctx.timeoutMs / 1000
      }s (is the host reachable? raise --timeout if the link is slow)`,
      { retryable: true },
    );
  }
  if (
    (m = log.find(
      /^(command-line.*|.*line \d+: .*|Can't open user config file.*|.*[Bb]ad configuration option.*|.*bad configuration options.*|Bad owner or permissions on .*)$/,
    ))
  ) {
    return new ConfigError(`ssh rejected its options or config file: ${printable(m[1])}`);
  }
  if ((m = log.find(/subsystem request failed/))) {
    return new SshError(
      "remote",
      `Cannot start SFTP on ${
        printable(label)
      }: the server refused the sftp subsystem (is "Subsystem sftp" enabled in its sshd_config?)`,
    );
  }
  const last = log.messages.filter((l) => !/^Transferred|^Bytes per second|^Authenticated to/.test(l)).at(-1);
  const said = last ? `: ${printable(last.replace(/^ssh: /, ""))}` : code === null ? "" : ` (ssh exited with ${code})`;
  return new SshError("connection", `Connection to ${printable(label)} failed${said}`, { retryable: true });
}
