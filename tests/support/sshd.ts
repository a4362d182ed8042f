/**
 * Test support: a real OpenSSH `sshd` on 127.0.0.1 at a free port, with host and client
 * keys made by `ssh-keygen` for the run, SFTP enabled (internal-sftp), running as the
 * current user. `await using server = await startSshd();` stops it and removes its files.
 *
 * @module
 */

import { join } from "node:path";
import { run } from "./db.ts";
import type { ConnectOptions } from "../../src/pull/transport.ts";

/** A running test sshd. */
export interface Sshd extends AsyncDisposable {
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** The current user name (the login user). */
  user: string;
  /** Its temp directory (keys, config, logs). */
  dir: string;
  /** A directory to serve backups from (inside `dir`). */
  remoteDir: string;
  /** The client's private key (ed25519, no passphrase), authorized on the server. */
  clientKey: string;
  /** The server's public host key line (`ssh-ed25519 AAAA…`). */
  hostKeyLine: string;
  /** A known_hosts file trusting this server (`[127.0.0.1]:port ssh-ed25519 …`). */
  knownHosts: string;
  /**
   * An ssh config file of the test's own (OpenSSH finds `~` through the password database,
   * not `$HOME`, so tests never rely on ~/.ssh): `UserKnownHostsFile` is {@link knownHosts},
   * no global known_hosts.
   */
  sshConfig: string;
  /** Everything sshd wrote to stderr so far. */
  log(): string;
  /** The process id of sshd (the listener). */
  pid: number;
  /** Stops sshd and waits for it to exit. */
  stop(): Promise<void>;
}

/** Options for {@link startSshd}. */
export interface SshdOptions {
  /** Extra sshd_config lines; they win over the defaults. */
  config?: string[];
  /** Host key type. Default "ed25519". */
  hostKeyType?: "ed25519" | "ecdsa" | "rsa";
  /** Reuse host keys from this directory (files `ssh_host_key`, `ssh_host_key.pub`). */
  hostKeyFrom?: string;
  /** The `Subsystem sftp` command (a misbehaving server of a test's own). Default `internal-sftp`. */
  sftpSubsystem?: string;
}

const SSHD = "/usr/sbin/sshd";

/**
 * Options that make the OpenSSH clients (`sftp`, `scp`, `ssh`) log in to `server` with
 * its client key and trust only its known_hosts, never prompting. Run them with
 * `SSH_AUTH_SOCK` empty so no agent key is tried.
 */
export function opensshClientArgs(server: Pick<Sshd, "clientKey" | "knownHosts" | "sshConfig">): string[] {
  return [
    "-F",
    server.sshConfig,
    "-i",
    server.clientKey,
    "-o",
    `UserKnownHostsFile=${server.knownHosts}`,
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
  ];
}

/**
 * In-process connection options for `server` (`connectSftp()`): its client key, known_hosts
 * and ssh config, no agent, never a prompt.
 */
export function sshdConnectOptions(server: Sshd): ConnectOptions {
  return {
    host: "127.0.0.1",
    port: server.port,
    user: server.user,
    identityFiles: [server.clientKey],
    knownHostsFile: server.knownHosts,
    sshConfigPath: server.sshConfig,
    agentSocket: null,
    batchMode: true,
  };
}

/** The `sqlbk pull` arguments that fetch from `server` into `to`, with its key and known_hosts. */
export function pullArgs(s: Sshd, to: string, ...extra: string[]): string[] {
  return [
    "pull",
    `${s.user}@127.0.0.1:${s.remoteDir}`,
    "--port",
    String(s.port),
    "-i",
    s.clientKey,
    "--known-hosts",
    s.knownHosts,
    "--ssh-config",
    s.sshConfig,
    "--to",
    to,
    ...extra,
  ];
}

/** Generates an ssh key pair with the real `ssh-keygen`; returns the private key path. */
export async function keygen(path: string, type = "ed25519", passphrase = ""): Promise<string> {
  const out = await run("ssh-keygen", ["-q", "-t", type, "-N", passphrase, "-C", "sqlbk-test", "-f", path]);
  if (out.code !== 0) throw new Error(`ssh-keygen failed: ${out.stderr}`);
  return path;
}

/** A running `ssh-agent`. */
export interface Agent extends AsyncDisposable {
  /** Its socket (for `SSH_AUTH_SOCK`). */
  socket: string;
}

/** Starts a real `ssh-agent` in the foreground on `socket` and waits for the socket. */
export async function startAgent(socket: string): Promise<Agent> {
  const child = new Deno.Command("ssh-agent", { args: ["-D", "-a", socket], stdout: "null", stderr: "null" })
    .spawn();
  for (let i = 0;; i++) {
    try {
      await Deno.stat(socket);
      break;
    } catch {
      if (i > 500) {
        child.kill("SIGTERM");
        await child.status;
        throw new Error(`ssh-agent did not create ${socket}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    socket,
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

function _freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function _user(): Promise<string> {
  const out = await run("id", ["-un"]);
  if (out.code !== 0) throw new Error(`id -un failed: ${out.stderr}`);
  return out.stdout.trim();
}

/** Starts sshd and waits until it accepts connections. */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const dir = await Deno.makeTempDir({ prefix: "sqlbk-sshd-" });
  try {
    // sshd run as root needs its privilege-separation directory; others cannot create it.
    await Deno.mkdir("/run/sshd", { recursive: true }).catch(() => {});
    const hostKey = join(dir, "ssh_host_key");
    if (options.hostKeyFrom) {
      await Deno.copyFile(join(options.hostKeyFrom, "ssh_host_key"), hostKey);
      await Deno.copyFile(join(options.hostKeyFrom, "ssh_host_key.pub"), `${hostKey}.pub`);
      await Deno.chmod(hostKey, 0o600);
    } else {
      await keygen(hostKey, options.hostKeyType ?? "ed25519");
    }
    const clientKey = await keygen(join(dir, "client_key"));
    await Deno.copyFile(`${clientKey}.pub`, join(dir, "authorized_keys"));
    const remoteDir = join(dir, "remote");
    await Deno.mkdir(remoteDir);
    const user = await _user();
    const hostKeyLine = (await Deno.readTextFile(`${hostKey}.pub`)).trim().split(/\s+/).slice(0, 2).join(" ");

    // A port can be taken between choosing and binding: retry a few times.
    for (let attempt = 0;; attempt++) {
      const port = _freePort();
      // sshd keeps the first value it reads for a keyword, so the caller's lines go first.
      const config = [
        ...(options.config ?? []),
        `Port ${port}`,
        `ListenAddress 127.0.0.1`,
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        `PasswordAuthentication no`,
        `KbdInteractiveAuthentication no`,
        `PubkeyAuthentication yes`,
        `UsePAM no`,
        `StrictModes no`,
        `PermitRootLogin prohibit-password`,
        `AllowUsers ${user}`,
        `Subsystem sftp ${options.sftpSubsystem ?? "internal-sftp"}`,
        `LogLevel VERBOSE`,
        `MaxStartups 50`,
      ];
      const configPath = join(dir, "sshd_config");
      await Deno.writeTextFile(configPath, config.join("\n") + "\n");
      const child = new Deno.Command(SSHD, {
        args: ["-D", "-e", "-f", configPath],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let log = "";
      let exited = false;
      const status = child.status.then((s) => {
        exited = true;
        return s;
      });
      const decoder = new TextDecoder();
      let ready!: () => void;
      const readyP = new Promise<void>((r) => ready = r);
      const pump = (async () => {
        for await (const chunk of child.stderr) {
          log += decoder.decode(chunk, { stream: true });
          if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) ready();
        }
        ready();
      })();
      const timeout = setTimeout(() => ready(), 10_000);
      await readyP;
      clearTimeout(timeout);
      if (exited || !log.includes("Server listening")) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        await status;
        await pump.catch(() => {});
        if (attempt < 3 && /Address already in use|Cannot bind/i.test(log)) continue;
        throw new Error(`sshd did not start:\n${log}`);
      }
      const knownHosts = join(dir, "known_hosts");
      await Deno.writeTextFile(knownHosts, `[127.0.0.1]:${port} ${hostKeyLine}\n`);
      const sshConfig = join(dir, "ssh_config");
      await Deno.writeTextFile(
        sshConfig,
        `Host *\n  UserKnownHostsFile ${knownHosts}\n  GlobalKnownHostsFile /dev/null\n`,
      );
      let stopped = false;
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch { /* already gone */ }
        }
        await status;
        await pump.catch(() => {});
      };
      return {
        port,
        user,
        dir,
        remoteDir,
        clientKey,
        hostKeyLine,
        knownHosts,
        sshConfig,
        pid: child.pid,
        log: () => log,
        stop,
        async [Symbol.asyncDispose]() {
          await stop();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        },
      };
    }
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}
