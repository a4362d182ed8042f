/**
 * The command line of the OpenSSH client that carries a pull: which `ssh` binary, and the
 * options that sqlbk's flags map to (`ssh [options] -s -- host sftp`). OpenSSH applies
 * everything else (known_hosts, keys, agent, certificates, ssh_config, ProxyJump) itself.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** The OpenSSH options sqlbk sets from its own flags; `ssh_options` may not set them. */
const _OWN_OPTIONS = ["stricthostkeychecking", "userknownhostsfile", "globalknownhostsfile", "batchmode"];

/** What the ssh command line is built from (a subset of the connection options). */
export interface SshArgsOptions {
  /** Host as given: an alias from ssh_config, a name, or an address. Required. */
  host: string;
  /** Port (`-p`). Default: ssh_config's `Port`, else 22. */
  port?: number;
  /** Login user (`-l`). Default: ssh_config's `User`, else the local user. */
  user?: string;
  /** Identity files (`-i`, each). Default: none given (OpenSSH's agent, IdentityFile and ~/.ssh/id_*). */
  identityFiles?: string[];
  /** The known_hosts file (`UserKnownHostsFile`). Default: OpenSSH's (~/.ssh/known_hosts). */
  knownHostsFile?: string;
  /** `StrictHostKeyChecking=accept-new`: record the key of a host not yet known. Default false. */
  acceptNew?: boolean;
  /** No host-key check at all (`StrictHostKeyChecking=no`, nothing recorded). Default false. */
  insecureSkipHostKeyCheck?: boolean;
  /** Connect timeout in ms (`ConnectTimeout`; keepalives every third of it). Default 30000. */
  timeoutMs?: number;
  /** An ssh config file (`-F`) used instead of ~/.ssh/config and /etc/ssh/ssh_config. Default: OpenSSH's. */
  sshConfigPath?: string;
  /** More `-o` settings, e.g. `["Ciphers=aes128-ctr", "ProxyJump=bastion"]`. Default none. */
  sshOptions?: string[];
  /** The ssh-agent socket (`IdentityAgent`); `null` uses none. Default: OpenSSH's (`SSH_AUTH_SOCK`). */
  agentSocket?: string | null;
  /** `BatchMode=yes`: never prompt. Default: when stdin is not a terminal. */
  batchMode?: boolean;
}

/**
 * The `ssh` binary to run: `$SQLBK_SSH`, else `command` (the `ssh_command` key), else
 * `ssh` from PATH (like git's `GIT_SSH_COMMAND` over `core.sshCommand`).
 *
 * @example
 * ```ts
 * sshBinary(); // "ssh" (or $SQLBK_SSH)
 * sshBinary("/usr/local/bin/ssh"); // "/usr/local/bin/ssh"
 * ```
 */
export function sshBinary(command?: string): string {
  return Deno.env.get("SQLBK_SSH") || command || "ssh";
}

function _checkOption(option: string): void {
  const m = /^\s*([A-Za-z]+)\s*[= ]\s*(\S.*)$/.exec(option);
  if (!m) {
    throw new ConfigError(`Invalid ssh option "${option}": expected Keyword=value, e.g. "ProxyJump=bastion"`);
  }
  if (_OWN_OPTIONS.includes(m[1].toLowerCase())) {
    throw new ConfigError(
      `Invalid ssh option "${option}": sqlbk sets ${
        m[1]
      } itself (use --known-hosts, --accept-new or --insecure-skip-host-key-check)`,
    );
  }
}

/** The longest ConnectTimeout ssh honours, in seconds (it multiplies by 1000 into an int). */
const _MAX_SSH_TIMEOUT_S = Math.floor((2 ** 31 - 1) / 1000);

/**
 * The arguments of `ssh` for an SFTP session to `options.host`: `-v` (its debug lines carry
 * the host key's fingerprint and the keys offered, for the error messages), the mapped
 * flags, then `-s -- host sftp`. sqlbk's host-key settings come before `sshOptions`, and
 * OpenSSH keeps the first value it sees, so a host-key check is only ever skipped by the
 * explicit flag. Throws a ConfigError for a host or user that would read as an option.
 *
 * @example
 * ```ts
 * sshArgs({ host: "db1", port: 2222, user: "backup", acceptNew: true });
 * // ["-v", "-x", "-a", "-T", "-p", "2222", "-l", "backup", "-o", "StrictHostKeyChecking=accept-new", ..., "-s", "--", "db1", "sftp"]
 * ```
 */
export function sshArgs(options: SshArgsOptions): string[] {
  for (const [what, value] of [["host", options.host], ["user", options.user]] as const) {
    // deno-lint-ignore no-control-regex
    if (value !== undefined && (value === "" || value.startsWith("-") || /[\s\x00-\x1f]/.test(value))) {
      throw new ConfigError(`Invalid ${what} "${value}": it must not be empty, start with "-" or contain spaces`);
    }
  }
  // ssh keeps ConnectTimeout in ms in an int: beyond 2^31-1 ms it wraps (596 hours is the longest it honours).
  const timeoutS = Math.min(_MAX_SSH_TIMEOUT_S, Math.max(1, Math.ceil((options.timeoutMs ?? 30_000) / 1000)));
  const args = ["-v", "-x", "-a", "-T", "-o", "ClearAllForwardings=yes"];
  if (options.sshConfigPath !== undefined) args.push("-F", options.sshConfigPath);
  if (options.port !== undefined) args.push("-p", String(options.port));
  if (options.user !== undefined) args.push("-l", options.user);
  for (const file of options.identityFiles ?? []) args.push("-i", file);
  const o = (setting: string) => args.push("-o", setting);
  if (options.insecureSkipHostKeyCheck) {
    o("StrictHostKeyChecking=no");
    const none = Deno.build.os === "windows" ? "NUL" : "/dev/null";
    o(`UserKnownHostsFile=${none}`);
    o(`GlobalKnownHostsFile=${none}`);
  } else {
    o(`StrictHostKeyChecking=${options.acceptNew ? "accept-new" : "yes"}`);
    if (options.knownHostsFile !== undefined) o(`UserKnownHostsFile=${options.knownHostsFile}`);
  }
  if (options.agentSocket !== undefined) o(`IdentityAgent=${options.agentSocket ?? "none"}`);
  if (options.batchMode ?? !Deno.stdin.isTerminal()) o("BatchMode=yes");
  for (const setting of options.sshOptions ?? []) {
    _checkOption(setting);
    o(setting);
  }
  // After the caller's options, so ssh_options (and ssh_config) may still set their own.
  o(`ConnectTimeout=${timeoutS}`);
  o(`ServerAliveInterval=${Math.max(1, Math.round(timeoutS / 3))}`);
  o("ServerAliveCountMax=3");
  args.push("-s", "--", options.host, "sftp");
  return args;
}

let _defaultCiphers: Promise<string | null> | null = null;

async function _effectiveCiphers(binary: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(binary, { args, stdin: "null", stdout: "piped", stderr: "null" }).output();
    if (!out.success) return null;
    return /^ciphers (\S+)$/m.exec(new TextDecoder().decode(out.stdout))?.[1] ?? null;
  } catch {
    return null; // the real ssh reports what is wrong
  }
}

let _hardwareAes: Promise<boolean> | null = null;

/** Whether the CPU has AES instructions (Linux: the `aes` flag of /proc/cpuinfo, read by grep: Deno reads /proc only with --allow-all). */
function _hasHardwareAes(): Promise<boolean> {
  if (Deno.build.os !== "linux") return Promise.resolve(true); // Apple silicon, and x86 Macs and PCs of the last decade
  _hardwareAes ??= (async () => {
    try {
      const grep = new Deno.Command("grep", {
        args: ["-qwm1", "aes", "/proc/cpuinfo"],
        stdout: "null",
        stderr: "null",
      });
      return (await grep.output()).success;
    } catch {
      return false; // no grep: keep OpenSSH's order
    }
  })();
  return _hardwareAes;
}

/**
 * The `Ciphers=...` setting that moves AES-GCM to the front of OpenSSH's default list, or
 * null to leave ssh's choice alone. Only when the user set no `Ciphers` (the effective
 * list, from `ssh -G` with the same options, is OpenSSH's default) and the CPU has AES
 * instructions: then AES-GCM costs ssh and sshd about a third less CPU than OpenSSH's first
 * choice, chacha20-poly1305 (measured with bench/pull_download_probe.ts). The set of
 * ciphers stays the same; only the order changes.
 *
 * @example
 * ```ts
 * const setting = await aesFirstCiphers("ssh", sshArgs({ host: "db1" })); // "Ciphers=aes128-gcm@openssh.com,..." or null
 * ```
 */
export async function aesFirstCiphers(binary: string, args: string[]): Promise<string | null> {
  if (!(await _hasHardwareAes())) return null;
  const host = args.at(-2)!;
  _defaultCiphers ??= _effectiveCiphers(binary, ["-G", "-F", "/dev/null", "--", "localhost"]);
  const [effective, fallback] = await Promise.all([
    _effectiveCiphers(binary, [...args.slice(0, -4).filter((a) => a !== "-v"), "-G", "--", host]),
    _defaultCiphers,
  ]);
  if (effective === null || effective !== fallback) return null;
  const list = effective.split(",");
  const gcm = list.filter((c) => /^aes\d+-gcm@openssh\.com$/.test(c));
  if (gcm.length === 0 || list[0] === gcm[0]) return null;
  return `Ciphers=${[...gcm, ...list.filter((c) => !gcm.includes(c))].join(",")}`;
}
