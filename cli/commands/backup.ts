/**
 * `sqlbk backup`: back up one database, or every database of a config.
 *
 * @module
 */

import { intFlag, parseFlags, stderrIsTerminal } from "../args.ts";
import { formatBytes, ProgressBar } from "../progress.ts";
import { abortOnSignals } from "../signals.ts";
import { loadConfig, resolveConfig, type SqlbkConfig } from "../../src/config.ts";
import { ConfigError, errorMessage, ExitCode, exitCodeOf } from "../../src/errors.ts";
import { type BackupResult, runBackup } from "../../src/job.ts";
import { type Logger, silentLogger, textLogger } from "../../src/logger.ts";
import { databaseStem } from "../../src/naming.ts";
import type { RunSample } from "../../src/monitor/metrics.ts";
import { reportRun } from "../../src/monitor/report.ts";
import { REPORT_FLAGS, REPORT_HELP, reportTargets, warn } from "../monitor.ts";
import { printable, safeJson } from "../../src/printable.ts";

/** One line for the command list. */
export const summary = "Back up a live SQLite database to a gzip (or zstd) archive with a SHA-256 sidecar";

/** The help text. */
export const help = `sqlbk backup: take a consistent snapshot of a live SQLite database, compress it on every core
and publish it atomically as <backup_dir>/<stem>-<YYYY-MM-DDTHH-MM-SSZ>-<strategy>.bck.gz (.bck.zst
with zstd) with a .sha256 sidecar.

Usage:
  sqlbk backup DB [options]
  sqlbk backup --config FILE [options]

Options (flags override the config file):
  -c, --config FILE          TOML config (see "sqlbk blueprint"); may list several databases
  -s, --strategy NAME        online | vacuum (default: online)
  -d, --backup-dir DIR       where backups go (default: ./backups; created if its parent exists)
      --pages-per-step N     online: pages per step, at least 1 (default: 100)
      --sleep-interval DUR   online: pause between steps, Go duration (default: 10ms; 0s for none)
      --max-duration DUR     give up after this long, 0s for no limit (default: 1h)
      --keep-last N          keep the N newest backups of the database, 0 keeps all (default: 0)
      --compression CODEC    gzip | zstd (default: gzip; Go's tools read only gzip)
      --compression-level N  the codec's level: gzip 1-9 (default: 6), zstd 1-19 (default: 3)
      --check LEVEL          check the snapshot before publishing it: quick (PRAGMA
                             quick_check), full (PRAGMA integrity_check) or none
                             (default: quick); a failed check publishes nothing, and
                             an unchecked (none) backup never deletes older ones
      --json                 print one JSON object per database on stdout
${REPORT_HELP}
  -q, --quiet                no log lines on stderr (errors still print)
  -h, --help                 show this help

Output: the published path on stdout (one line per database), or with --json:
  {"database","file","path","bytes","sha256","strategy","pages","restarts","check","checkMs",
   "durationMs","deleted"}
Logs go to stderr; a progress bar replaces them when stderr is a terminal.

Exit codes: 0 ok, 1 a backup failed (including a source or snapshot that is empty, not a
database, or fails the check: nothing is published and retention does not run), 2 usage or
configuration error.
With several databases each is tried; any failure makes the exit code 1.

Examples:
  sqlbk backup app.db
  sqlbk backup app.db --strategy vacuum --backup-dir /var/backups/app --keep-last 7
  sqlbk backup --config /etc/sqlbk.toml --json
`;

/** Runs `sqlbk backup`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    config: { type: "string", short: "c" },
    strategy: { type: "string", short: "s" },
    "backup-dir": { type: "string", short: "d" },
    "pages-per-step": { type: "string" },
    "sleep-interval": { type: "string" },
    "max-duration": { type: "string" },
    "keep-last": { type: "string" },
    compression: { type: "string" },
    "compression-level": { type: "string" },
    check: { type: "string" },
    json: { type: "boolean", default: false },
    quiet: { type: "boolean", short: "q", default: false },
    ...REPORT_FLAGS,
  }, { command: "backup" });
  if (positionals.length > 1) {
    throw new ConfigError(`Too many arguments: ${positionals.join(" ")} (give one database, or --config FILE)`);
  }
  const db = positionals[0];
  if (db === undefined && values.config === undefined) {
    throw new ConfigError(`Nothing to back up: give a database path or --config FILE (see "sqlbk backup --help")`);
  }
  const overrides: Record<string, unknown> = {
    source_path: db,
    strategy: values.strategy,
    backup_dir: values["backup-dir"],
    sleep_interval: values["sleep-interval"],
    max_duration: values["max-duration"],
    pages_per_step: values["pages-per-step"] === undefined
      ? undefined
      : intFlag("--pages-per-step", values["pages-per-step"], { min: 1 }),
    keep_last: values["keep-last"] === undefined ? undefined : intFlag("--keep-last", values["keep-last"]),
    compression: values.compression,
    compression_level: values["compression-level"] === undefined
      ? undefined
      : intFlag("--compression-level", values["compression-level"], { min: 1 }),
    check: values.check,
  };
  for (const key of Object.keys(overrides)) if (overrides[key] === undefined) delete overrides[key];
  const config: SqlbkConfig = values.config !== undefined
    ? await loadConfig(values.config, { overrides })
    : resolveConfig({}, { origin: "command line", overrides });
  const targets = reportTargets(values, config.monitor);
  const runs: RunSample[] = [];
  const lines: string[] = [];

  const tty = stderrIsTerminal();
  const bar = new ProgressBar(tty && !values.quiet);
  // Failures are printed once, as "error: ..." lines, so the logger skips them; on a
  // terminal the progress bar replaces the progress records.
  const logger: Logger = values.quiet ? silentLogger : {
    log: (r) => {
      if (r.event === "backup.failed" || (tty && r.event === "backup.progress")) return;
      bar.done();
      textLogger.log(r);
    },
  };
  const { signal, dispose } = abortOnSignals();
  const several = config.databases.length > 1;
  let failures = 0;
  let lastCode: number = ExitCode.OK;
  try {
    for (const database of config.databases) {
      if (signal.aborted) break;
      const began = performance.now();
      const sample = { database: databaseStem(database.sourcePath), kind: "backup" as const };
      try {
        const result = await runBackup(database, {
          signal,
          logger,
          onProgress: (p) => {
            // Label, percentage and counts all describe the current step (1/2 snapshot, 2/2 compress).
            const detail = p.phase === "compress"
              ? `${formatBytes(p.done)} / ${formatBytes(p.total)}`
              : `${p.done}/${p.total} pages`;
            const step = p.phase === "snapshot" ? 1 : 2;
            bar.update(p.total > 0 ? p.done / p.total : 1, `${p.database} ${p.phase} ${step}/2`, detail);
          },
        });
        bar.done();
        _print(result, values.json);
        runs.push({ ...sample, ok: true, endedMs: Date.now(), durationMs: result.durationMs, bytes: result.bytes });
        lines.push(`${sample.database}: published ${result.file} (${formatBytes(result.bytes)})`);
      } catch (err) {
        bar.done();
        runs.push({ ...sample, ok: false, endedMs: Date.now(), durationMs: performance.now() - began });
        lines.push(`${sample.database}: failed: ${errorMessage(err)}`);
        failures++;
        lastCode = exitCodeOf(err);
        if (!several) throw err;
        console.error(`error: ${printable(`${database.name}: ${errorMessage(err)}`, Infinity)}`);
      }
    }
  } finally {
    dispose();
    const ok = failures === 0 && !signal.aborted;
    await reportRun(
      targets,
      { ok, summary: `sqlbk backup ${ok ? "ok" : "failed"}\n${lines.join("\n")}\n`, runs },
      { warn },
    );
  }
  // An interrupted backup has already printed its error line ("Interrupted by a signal; ...").
  if (signal.aborted) return ExitCode.FAILURE;
  if (failures > 0) return several ? ExitCode.FAILURE : lastCode;
  return ExitCode.OK;
}

function _print(result: BackupResult, json: boolean): void {
  if (json) {
    console.log(safeJson({
      database: result.database,
      file: result.file,
      path: result.path,
      bytes: result.bytes,
      sha256: result.sha256,
      strategy: result.strategy,
      pages: result.pages,
      restarts: result.restarts,
      check: result.check,
      checkMs: result.checkMs,
      durationMs: result.durationMs,
      deleted: result.deleted,
    }));
  } else {
    console.log(printable(result.path, Infinity));
  }
}
