/**
 * `sqlbk pull`: fetch the newest backup of each database from a server over SFTP,
 * verify it, and keep it.
 *
 * @module
 */

import { intFlag, parseFlags, stderrIsTerminal } from "../args.ts";
import { CHECK_FLAGS, CHECK_HELP, checkFlags } from "../check_flags.ts";
import { formatBytes, ProgressBar } from "../progress.ts";
import { abortOnSignals } from "../signals.ts";
import { loadConfig } from "../../src/config.ts";
import { parseDuration } from "../../src/duration.ts";
import { ConfigError, errorMessage, ExitCode, exitCodeOf } from "../../src/errors.ts";
import { parsePullTable, type PullTable } from "../../src/pull/pull_config.ts";
import { pull, PullBatchError, type PullResult } from "../../src/pull/pull.ts";
import { parseTarget, type Target } from "../../src/pull/target.ts";
import type { ConnectOptions } from "../../src/pull/transport.ts";
import { DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, MAX_CHUNK_SIZE } from "../../src/pull/download.ts";
import type { RunSample } from "../../src/monitor/metrics.ts";
import type { MonitorConfig } from "../../src/monitor/monitor_config.ts";
import { databasesInMetrics, reportRun } from "../../src/monitor/report.ts";
import { PROBE_FLAGS, PROBE_HELP, probesOf, REPORT_FLAGS, REPORT_HELP, reportTargets, warn } from "../monitor.ts";
import { printable, safeJson } from "../../src/printable.ts";

/** One line for the command list. */
export const summary = "Fetch the newest backups from a server over SFTP, verify them, keep them";

/** The connection options shared by `pull` and `list`, for their help texts. */
export const CONNECTION_HELP =
  `  -p, --port N               SSH port (default: from the target, the ssh config, else 22)
  -l, --user NAME            login user (default: from the target, the ssh config, else the local user)
  -i, --identity FILE        private key, passed to ssh -i; repeatable; a missing file is exit 2
                             (default: OpenSSH's own: ssh-agent, IdentityFile in the ssh config,
                             ~/.ssh/id_*)
      --known-hosts FILE     known_hosts file (default: OpenSSH's, ~/.ssh/known_hosts)
      --accept-new           record the key of a host not yet in known_hosts (ssh's
                             StrictHostKeyChecking=accept-new); a changed key is still refused
      --insecure-skip-host-key-check
                             do not verify the server's identity at all (warns every time)
      --ssh-config FILE      ssh config file, passed to ssh -F (default: ~/.ssh/config)
      --timeout DUR          connection timeout, Go duration or seconds (default: 30s)`;

/** How the connection is made, for the help texts of `pull` and `list`. */
export const CONNECTION_NOTE = `The connection is the system's OpenSSH client (ssh -s HOST sftp; SQLBK_SSH names another
binary): its host keys, keys, agent, certificates and ssh config (ProxyJump, Match) apply.`;

/** The help text. */
export const help = `sqlbk pull: fetch the newest backup of each database from a server over SFTP, verify it
(server's .sha256 checksum, full decompression of the .bck.gz or .bck.zst archive, the integrity
check on every core) and publish it atomically in a local directory. Earlier local backups are
never touched by a download that fails.

Usage:
  sqlbk pull TARGET [--to DIR] [options]
  sqlbk pull --config FILE [TARGET] [options]

TARGET is [user@]host:/remote/dir or sftp://[user@]host[:port]/remote/dir; host may be a
Host alias from the ssh config (OpenSSH applies all of it).

Options (flags override the [pull] table of --config):
  -c, --config FILE          TOML config with a [pull] table (keys: host, port, user, identity_file,
                             remote_dir, local_dir, known_hosts, keep_last, databases,
                             ssh_command, ssh_config, ssh_options)
  -t, --to DIR               local directory for the backups, created if missing
                             (default: the [pull] table's local_dir, else .)
      --db NAME              pull only this database; repeatable
                             (default: the [pull] table's databases, else every database found)
${CONNECTION_HELP}
      --retries N            retry a refused or timed-out connection, and resume after a drop (default: 3)
      --keep-last N          keep the N newest local backups per database, 0 keeps all
                             (default: the [pull] table's keep_last, else 0); the newest verified copy is never deleted
      --decompress           also publish the verified database as <DIR>/<database>-latest.db
      --keep-corrupt         keep a download that fails verification as <name>.corrupt
${CHECK_HELP}
      --concurrency N        SFTP read requests in flight (default: 4 MiB of requests, ${
  Math.round((DEFAULT_CONCURRENCY * DEFAULT_CHUNK_SIZE) / MAX_CHUNK_SIZE)
} of ${MAX_CHUNK_SIZE} bytes)
      --chunk-size N         bytes per SFTP read request, 4096 to ${MAX_CHUNK_SIZE} and at most what the server
                             reports (default: its max-read-length up to ${MAX_CHUNK_SIZE}, OpenSSH's; ${DEFAULT_CHUNK_SIZE}
                             when it reports none)
      --json                 print one JSON object per database on stdout
${PROBE_HELP}
${REPORT_HELP}
  -q, --quiet                no log lines on stderr (errors still print)
  -h, --help                 show this help

${CONNECTION_NOTE}

Downloads go to <name>.partial; an interrupted download of an unchanged remote file (same
size and modification time) resumes. A file already present and verified is skipped.

Output: the local path of each backup on stdout, or with --json one object per database:
  {"database","file","path","bytes","sha256","verified","skipped","check","checkMs"}
("check" is null and "checkMs" 0 for a file already present and verified).
A progress bar (bytes, rate, ETA) is drawn on stderr when it is a terminal.

Exit codes: 0 ok, 1 failure (connection, authentication, host key, nothing found),
2 usage or configuration error, 3 a backup failed verification.

Examples:
  sqlbk pull backup@db1.example.com:/var/backups/app --to /srv/pulled --keep-last 14
  sqlbk pull sftp://db1:2222/var/backups --db app --decompress --json
  sqlbk pull --config /etc/sqlbk-pull.toml
  sqlbk pull db1:/var/backups/app --ssh-config /etc/sqlbk/ssh_config   # e.g. a ProxyJump there
`;

/** The flag table of the connection options. */
export const CONNECTION_FLAGS = {
  port: { type: "string", short: "p" },
  user: { type: "string", short: "l" },
  identity: { type: "string", short: "i", multiple: true },
  "known-hosts": { type: "string" },
  "accept-new": { type: "boolean", default: false },
  "insecure-skip-host-key-check": { type: "boolean", default: false },
  "ssh-config": { type: "string" },
  timeout: { type: "string" },
} as const;

/** Parses `--timeout`: a Go duration, or a bare number of seconds. */
export function timeoutFlag(value: string): number {
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(value.trim())) {
    ms = Number(value) * 1000;
  } else {
    try {
      ms = parseDuration(value);
    } catch {
      throw new ConfigError(`Invalid --timeout "${value}": expected a duration such as "30s" or "2m", or seconds`);
    }
  }
  if (ms <= 0) throw new ConfigError(`Invalid --timeout "${value}": it must be more than 0`);
  return ms;
}

/** Options for {@link connectionOptions}. */
export interface ConnectionFlagsOptions {
  /** Keep ssh's warnings off stderr, all but the insecure-mode one (`--quiet`). Default `false`. */
  quiet?: boolean;
}

/**
 * Builds the connection options from the parsed flags `values` and the [pull] table `table`
 * (default none); flags win over the table's keys.
 *
 * @example
 * ```ts
 * const connect = connectionOptions({ port: "2222", "accept-new": true }, { user: "backup" }, { quiet: true });
 * ```
 */
export function connectionOptions(
  values: {
    port?: string;
    user?: string;
    identity?: string[];
    "known-hosts"?: string;
    "accept-new"?: boolean;
    "insecure-skip-host-key-check"?: boolean;
    "ssh-config"?: string;
    timeout?: string;
  },
  table: PullTable = {},
  options: ConnectionFlagsOptions = {},
): Omit<ConnectOptions, "host"> {
  const { quiet = false } = options;
  const fromFlags = values.identity?.length ? values.identity : undefined;
  const identityFiles = fromFlags ?? (table.identityFile ? [table.identityFile] : undefined);
  for (const file of identityFiles ?? []) _identityExists(file, fromFlags ? "--identity" : `"identity_file" in [pull]`);
  return {
    port: values.port !== undefined ? _port(values.port) : table.port,
    user: values.user ?? table.user,
    identityFiles,
    knownHostsFile: values["known-hosts"] ?? table.knownHosts,
    acceptNew: values["accept-new"],
    insecureSkipHostKeyCheck: values["insecure-skip-host-key-check"],
    timeoutMs: values.timeout !== undefined ? timeoutFlag(values.timeout) : undefined,
    sshConfigPath: values["ssh-config"] ?? table.sshConfig,
    sshCommand: table.sshCommand,
    sshOptions: table.sshOptions,
    onWarning: (m) => {
      // The insecure-mode warning prints even with --quiet: it says what the flag risks.
      if (!quiet || /insecure/i.test(m)) console.error(`warning: ${printable(m, Infinity)}`);
    },
  };
}

/**
 * A key file that is not there is refused before ssh starts (ssh only warns, then fails to
 * authenticate). Paths ssh expands itself (`~`, `%` tokens) are left to it.
 */
function _identityExists(file: string, where: string): void {
  if (file.startsWith("~") || file.includes("%")) return;
  try {
    Deno.statSync(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) return;
    throw new ConfigError(
      `Invalid ${where}: identity file "${file}" does not exist (give the path of the private key ssh should use)`,
      { cause: err },
    );
  }
}

function _port(value: string): number {
  const n = intFlag("--port", value, { min: 1 });
  if (n > 65535) throw new ConfigError(`Invalid --port "${value}": expected 1-65535`);
  return n;
}

function _eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
    : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Runs `sqlbk pull`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    config: { type: "string", short: "c" },
    to: { type: "string", short: "t" },
    db: { type: "string", multiple: true },
    ...CONNECTION_FLAGS,
    retries: { type: "string" },
    "keep-last": { type: "string" },
    decompress: { type: "boolean", default: false },
    "keep-corrupt": { type: "boolean", default: false },
    concurrency: { type: "string" },
    "chunk-size": { type: "string" },
    json: { type: "boolean", default: false },
    quiet: { type: "boolean", short: "q", default: false },
    ...PROBE_FLAGS,
    ...REPORT_FLAGS,
    ...CHECK_FLAGS,
  }, { command: "pull" });
  if (positionals.length > 1) {
    throw new ConfigError(`Too many arguments: ${positionals.join(" ")} (give one TARGET; see "sqlbk pull --help")`);
  }
  const { check, jobs } = checkFlags(values);
  let table: PullTable = {};
  let monitor: MonitorConfig | undefined;
  if (values.config !== undefined) {
    const cfg = await loadConfig(values.config, { requireSource: false });
    table = parsePullTable(cfg.pull, cfg.origin);
    monitor = cfg.monitor;
  }
  const targets = reportTargets(values, monitor);
  const probes = probesOf(values, monitor);
  let target: Target;
  if (positionals[0] !== undefined) {
    target = parseTarget(positionals[0]);
  } else if (table.host !== undefined) {
    target = { host: table.host, remoteDir: table.remoteDir ?? "." };
  } else {
    throw new ConfigError(
      `Nothing to pull from: give TARGET ([user@]host:/dir or sftp://host/dir) or --config FILE with a [pull] table that sets host and remote_dir`,
    );
  }
  const retries = values.retries !== undefined ? intFlag("--retries", values.retries) : 3;
  const keepLast = values["keep-last"] !== undefined ? intFlag("--keep-last", values["keep-last"]) : table.keepLast;
  const concurrency = values.concurrency !== undefined
    ? intFlag("--concurrency", values.concurrency, { min: 1 })
    : undefined;
  const chunkSize = values["chunk-size"] !== undefined
    ? intFlag("--chunk-size", values["chunk-size"], { min: 4096 })
    : undefined;
  if (chunkSize !== undefined && chunkSize > MAX_CHUNK_SIZE) {
    throw new ConfigError(
      `Invalid --chunk-size "${chunkSize}": OpenSSH serves at most ${MAX_CHUNK_SIZE} bytes per read`,
    );
  }
  const quiet = values.quiet;
  const tty = stderrIsTerminal();
  const bar = new ProgressBar(tty && !quiet);
  const log = (m: string) => {
    if (quiet) return;
    bar.done();
    console.error(printable(m, Infinity));
  };
  let started = 0;
  let startBytes = 0;
  let current = "";
  const { signal, dispose } = abortOnSignals();
  // Per-database outcomes for the metrics file and the heartbeat: databases run one after
  // another, so each one's duration runs from the end of the one before.
  const runs: RunSample[] = [];
  const lines: string[] = [];
  let mark = performance.now();
  let inProgress: string | null = null;
  const record = (database: string, ok: boolean, bytes: number | undefined, line: string) => {
    const now = performance.now();
    runs.push({ database, kind: "pull", ok, endedMs: Date.now(), durationMs: now - mark, bytes });
    lines.push(`${database}: ${line}`);
    mark = now;
    if (inProgress === database) inProgress = null;
  };
  const print = (r: PullResult) => {
    record(r.database, true, r.bytes, `${r.file} ${r.skipped ? "already present and verified" : "pulled, verified"}`);
    bar.done();
    if (values.json) {
      console.log(safeJson({
        database: r.database,
        file: r.file,
        path: r.path,
        bytes: r.bytes,
        sha256: r.sha256,
        verified: r.verified,
        skipped: r.skipped,
        check: r.check,
        checkMs: r.checkMs,
      }));
    } else {
      console.log(printable(r.path, Infinity));
      if (!quiet) {
        const what = r.skipped
          ? "already present and verified; nothing downloaded"
          : `${formatBytes(r.bytes)}, verified (${r.checksumVerified ? "checksum, " : ""}decompression, ${
            r.check === "quick" ? "quick check only" : "full check"
          } in ${r.checkMs} ms)${r.resumedFrom > 0 ? `, resumed at ${formatBytes(r.resumedFrom)}` : ""}`;
        console.error(
          printable(
            `${r.database}: ${r.file}: ${what}${r.deleted.length ? `; deleted ${r.deleted.join(", ")}` : ""}`,
            Infinity,
          ),
        );
      }
    }
  };
  try {
    await pull(target, {
      ...connectionOptions(values, table, { quiet }),
      localDir: values.to ?? table.localDir ?? ".",
      databases: values.db?.length ? values.db : table.databases,
      keepLast,
      retries,
      decompress: values.decompress,
      keepCorrupt: values["keep-corrupt"],
      check,
      jobs,
      concurrency,
      chunkSize,
      signal,
      onLog: log,
      probes,
      onResult: print,
      onProgress: (p) => {
        inProgress = p.database;
        if (p.file !== current) {
          current = p.file;
          started = performance.now();
          startBytes = p.bytes;
        }
        if (p.phase === "verify") {
          bar.update(1, `${p.database} verify`, formatBytes(p.total));
          return;
        }
        const secs = (performance.now() - started) / 1000;
        const rate = secs > 0 ? (p.bytes - startBytes) / secs : 0;
        const eta = rate > 0 ? (p.total - p.bytes) / rate : NaN;
        bar.update(
          p.total > 0 ? p.bytes / p.total : 1,
          p.database,
          `${formatBytes(p.bytes)} / ${formatBytes(p.total)} ${formatBytes(rate)}/s ETA ${_eta(eta)}`,
        );
      },
    });
  } catch (err) {
    bar.done();
    if (err instanceof PullBatchError) {
      for (const f of err.failures) record(f.database, false, undefined, `failed: ${errorMessage(f.error)}`);
    } else {
      // A failure before or during one database: the one in progress, else those asked
      // for (or seen by earlier runs) that did not succeed.
      const done = new Set(runs.map((r) => r.database));
      const asked = values.db?.length ? values.db : table.databases ?? [];
      let failed = inProgress !== null ? [inProgress] : asked.filter((d) => !done.has(d));
      if (failed.length === 0 && inProgress === null && targets.metricsFile !== undefined) {
        failed = (await databasesInMetrics(targets.metricsFile, "pull")).filter((d) => !done.has(d));
      }
      for (const d of failed) record(d, false, undefined, `failed: ${errorMessage(err)}`);
      if (failed.length === 0) lines.push(`failed: ${errorMessage(err)}`);
    }
    await reportRun(targets, { ok: false, summary: `sqlbk pull failed\n${lines.join("\n")}\n`, runs }, { warn });
    if (signal.aborted) {
      console.error("error: interrupted; the download is kept as .partial and resumes on the next run");
      return ExitCode.FAILURE;
    }
    if (err instanceof PullBatchError) {
      for (const f of err.failures) {
        console.error(`error: ${printable(`${f.database}: ${errorMessage(f.error)}`, Infinity)}`);
      }
      return err.exitCode;
    }
    console.error(`error: ${printable(errorMessage(err), Infinity)}`);
    if (Deno.env.get("SQLBK_DEBUG") && err instanceof Error) console.error(err.stack);
    return exitCodeOf(err);
  } finally {
    dispose();
  }
  await reportRun(targets, { ok: true, summary: `sqlbk pull ok\n${lines.join("\n")}\n`, runs }, { warn });
  return ExitCode.OK;
}
