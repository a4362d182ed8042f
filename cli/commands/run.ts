/**
 * `sqlbk run`: the backup worker on the app's job_queue.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { abortOnSignals } from "../signals.ts";
import { goStyleFlags } from "./insert_job.ts";
import { DEFAULT_CONFIG_SCOPE, loadConfigFromDb } from "../../src/app_config.ts";
import { loadConfig, type SqlbkConfig } from "../../src/config.ts";
import { parseDuration } from "../../src/duration.ts";
import { ConfigError, ExitCode } from "../../src/errors.ts";
import { jsonLogger, type Logger, silentLogger, textLogger } from "../../src/logger.ts";
import { runWorker } from "../../src/worker.ts";
import { RunObserver } from "../../src/monitor/report.ts";
import { REPORT_FLAGS, reportTargets, warn } from "../monitor.ts";

/** One line for the command list. */
export const summary = "Run scheduled backups: the worker on the app's job_queue";

/** The help text. */
export const help = `sqlbk run: the backup worker. Every poll it claims the due "db_backup" rows of the app's
job_queue (other job types belong to the app and are never touched), backs up every database
of the config, and records the outcome in the Go server's formats: completed with the next run
scheduled one interval later, or failed with a retry after an exponential backoff.

Usage:
  sqlbk run --dbpath FILE --config FILE [options]
  sqlbk run --dbpath FILE --config-from-db --age-key FILE [options]

Options:
      --dbpath FILE       the app's SQLite database holding job_queue (required)
  -c, --config FILE       the backup config, TOML (see "sqlbk blueprint")
      --config-from-db    read the config from the newest app_config row of the scope in
                          --dbpath, decrypted with --age-key (re-read before every job)
      --age-key FILE      age identity file (AGE-SECRET-KEY-1...; blank and # lines skipped)
      --scope NAME        app_config scope (default: ${DEFAULT_CONFIG_SCOPE})
      --poll DUR          how often to look for due jobs (default: 10s); the worker also
                          wakes when the next job is due
      --once              run what is due now, then exit (for cron); exit 1 if a job failed
                          or a due job could not be claimed (database locked, unreadable)
      --timeout DUR       abort a job after this long, 0s for no limit (default: the config's
                          max_duration, summed over its databases; 1h by default)
      --lease DUR         claim a job again when its worker has not renewed its lock for this
                          long (default: twice the timeout; 1h when there is no timeout);
                          a running worker renews every third of it
      --backoff DUR       first retry delay after a failure, doubled per attempt, capped at
                          1h and at the job's interval (default: 30s)
      --worker-id ID      written to locked_by (default: <hostname>:<pid>)
      --json              log JSON lines on stderr
      --metrics-file FILE after every job, update this Prometheus textfile atomically,
                          keeping other databases' series (default: config's metrics_file)
      --heartbeat-url URL after every job, POST a short summary to URL (success) or
                          URL/fail (failure), 10s timeout (default: config's heartbeat_url)
  -q, --quiet             no log lines (errors of the command itself still print)
  -h, --help              show this help

Signals: SIGINT or SIGTERM stop claiming, abort the running backup between steps (nothing
partial is published), set its row back to pending (it runs again on restart), and exit 0.

The worker may run on the app's own database (job_queue in app.db, source_path = app.db): it
touches the database only through SQLite. If the file is deleted or replaced while it runs, the
worker stops claiming, prints one error line and exits 1.

Exit codes: 0 ok (or stopped by a signal), 1 a job failed or could not be claimed (with
--once), or the database was deleted or replaced, 2 usage or configuration error (missing
database, table, config, key or app_config row).

Examples:
  sqlbk run --dbpath /srv/app/app.db --config /etc/sqlbk/sqlbk.toml
  sqlbk run --dbpath app.db --config sqlbk.toml --once
  sqlbk run --dbpath app.db --config-from-db --age-key /etc/sqlbk/age.key --poll 30s
`;

function _duration(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    const ms = parseDuration(value);
    if (ms < 0) throw new Error("negative");
    return ms;
  } catch (err) {
    throw new ConfigError(`Invalid ${flag} "${value}": expected a duration such as "10s", "1h" or "0s"`, {
      cause: err,
    });
  }
}

/** Runs `sqlbk run`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(goStyleFlags(args, ["dbpath"]), {
    dbpath: { type: "string" },
    config: { type: "string", short: "c" },
    "config-from-db": { type: "boolean", default: false },
    "age-key": { type: "string" },
    scope: { type: "string", default: DEFAULT_CONFIG_SCOPE },
    poll: { type: "string", default: "10s" },
    once: { type: "boolean", default: false },
    timeout: { type: "string" },
    lease: { type: "string" },
    backoff: { type: "string", default: "30s" },
    "worker-id": { type: "string" },
    json: { type: "boolean", default: false },
    quiet: { type: "boolean", short: "q", default: false },
    ...REPORT_FLAGS,
  }, { command: "run" });
  if (positionals.length > 0) throw new ConfigError(`Unexpected argument "${positionals[0]}" (see "sqlbk run --help")`);
  const dbPath = values.dbpath;
  if (!dbPath) {
    throw new ConfigError(`Missing --dbpath FILE: the app's database holding job_queue (see "sqlbk run --help")`);
  }
  const pollMs = _duration("--poll", values.poll)!;
  if (pollMs <= 0) throw new ConfigError(`Invalid --poll "${values.poll}": must be more than 0s`);
  const timeoutMs = _duration("--timeout", values.timeout);
  const leaseMs = _duration("--lease", values.lease);
  if (leaseMs !== undefined && leaseMs < 1000) throw new ConfigError(`Invalid --lease "${values.lease}": at least 1s`);
  const backoffMs = _duration("--backoff", values.backoff);

  let config: SqlbkConfig | (() => Promise<SqlbkConfig>);
  let monitor: SqlbkConfig["monitor"] | undefined;
  if (values["config-from-db"]) {
    if (values.config !== undefined) throw new ConfigError(`Give either --config FILE or --config-from-db, not both`);
    if (!values["age-key"]) {
      throw new ConfigError(`--config-from-db needs --age-key FILE: the age identity the config is encrypted to`);
    }
    const ageKeyFile = values["age-key"];
    const load = async () => (await loadConfigFromDb(dbPath, { ageKeyFile, scope: values.scope })).config;
    monitor = (await load()).monitor; // fail fast (exit 2) on a missing table or row, a wrong key or a bad config
    config = load;
  } else {
    if (values.config === undefined) {
      throw new ConfigError(`Missing --config FILE (or --config-from-db --age-key FILE) (see "sqlbk run --help")`);
    }
    config = await loadConfig(values.config);
    monitor = config.monitor;
  }

  const observer = new RunObserver(
    values.quiet ? silentLogger : values.json ? jsonLogger : textLogger,
    reportTargets(values, monitor),
    warn,
  );
  const logger: Logger = observer.logger;
  const { signal, dispose } = abortOnSignals();
  try {
    const summary = await runWorker({
      dbPath,
      config,
      pollMs,
      once: values.once,
      timeoutMs,
      leaseMs,
      backoffMs,
      workerId: values["worker-id"],
      logger,
      signal,
    });
    await observer.settled();
    if (signal.aborted) return ExitCode.OK;
    return values.once && summary.failed > 0 ? ExitCode.FAILURE : ExitCode.OK;
  } finally {
    dispose();
  }
}
