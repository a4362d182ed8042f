/**
 * What a run says about itself when it ends: its samples merged into the metrics file
 * and a heartbeat. Neither ever throws or changes the run's result; a failure becomes a
 * warning line.
 *
 * @module
 */

import { databaseStem } from "../naming.ts";
import { errorMessage } from "../errors.ts";
import type { Logger, LogRecord } from "../logger.ts";
import { type HeartbeatOptions, sendHeartbeat } from "./heartbeat.ts";
import { type FreshnessSample, parseMetrics, type RunKind, type RunSample, updateMetricsFile } from "./metrics.ts";

/** Where a run reports: both optional. */
export interface ReportTargets {
  /** Prometheus textfile to update. Default: none. */
  metricsFile?: string;
  /** Heartbeat URL. Default: none. */
  heartbeatUrl?: string;
  /** Heartbeat timeout in ms. Default 10 s. */
  heartbeatTimeoutMs?: HeartbeatOptions["timeoutMs"];
}

/** One run's report. */
export interface RunReport {
  /** Whether the run succeeded (success URL) or not (`/fail`). */
  ok: boolean;
  /** The heartbeat body: a few lines of plain text. */
  summary: string;
  /** Per-database outcomes for the metrics file. */
  runs?: RunSample[];
  /** Per-database freshness for the metrics file (`sqlbk status`). */
  freshness?: FreshnessSample[];
}

/** Options for {@link reportRun}. */
export interface ReportRunOptions {
  /** Receives each problem as one line (a metrics file not written, a failed heartbeat). Required: no default. */
  warn: (message: string) => void;
}

/**
 * Writes the metrics and sends the heartbeat of a finished run, concurrently. Resolves
 * (never rejects) when both are done; problems go to `options.warn`.
 *
 * @example
 * ```ts
 * await reportRun({ heartbeatUrl: "https://hc-ping.com/abc" }, { ok: true, summary: "app: backed up" }, {
 *   warn: console.error,
 * });
 * ```
 */
export async function reportRun(targets: ReportTargets, report: RunReport, options: ReportRunOptions): Promise<void> {
  const { warn } = options;
  const jobs: Promise<void>[] = [];
  if (targets.metricsFile !== undefined) {
    const path = targets.metricsFile;
    jobs.push(
      updateMetricsFile(path, { runs: report.runs, freshness: report.freshness }).catch((err) =>
        warn(`cannot write metrics file "${path}": ${errorMessage(err)}`)
      ),
    );
  }
  if (targets.heartbeatUrl !== undefined) {
    const url = targets.heartbeatUrl;
    jobs.push(
      sendHeartbeat(url, { success: report.ok, body: report.summary, timeoutMs: targets.heartbeatTimeoutMs }).then(
        (r) => {
          if (!r.ok) warn(`heartbeat to "${r.url}" failed: ${r.error}`);
        },
      ),
    );
  }
  await Promise.all(jobs);
}

/**
 * The databases an earlier run recorded in a metrics file for `kind` (empty when the
 * file is missing or unreadable): what a pull that failed before it saw any database
 * reports as failed.
 *
 * @example
 * ```ts
 * const dbs = await databasesInMetrics("/var/lib/node_exporter/sqlbk.prom", "pull");
 * ```
 */
export async function databasesInMetrics(path: string, kind: RunKind): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return [];
  }
  const series = parseMetrics(text).get("sqlbk_last_attempt_timestamp_seconds") ?? new Map();
  const out = new Set<string>();
  for (const labels of series.keys()) {
    const m = /^database="((?:[^"\\]|\\.)*)",kind="([a-z]+)"$/.exec(labels);
    if (m && m[2] === kind) out.add(m[1].replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1"));
  }
  return [...out].sort();
}

/**
 * Watches the log records of `sqlbk run`'s worker and reports after every job: the
 * backups it ran (from `backup.start`, `backup.done` and `backup.failed`) go to the
 * metrics file, and a heartbeat says whether the job succeeded. Pass `observer.logger`
 * to the worker, then `await observer.settled()` before exiting.
 *
 * @example
 * ```ts
 * const observer = new RunObserver(textLogger, { metricsFile: "sqlbk.prom" }, console.error);
 * // await runWorker({ ..., logger: observer.logger }); await observer.settled();
 * ```
 */
export class RunObserver {
  /** The logger to hand to the worker: forwards every record, then observes it. */
  readonly logger: Logger;
  #targets: ReportTargets;
  #warn: (message: string) => void;
  #started = new Map<string, number>();
  #runs: RunSample[] = [];
  #lines: string[] = [];
  #chain: Promise<void> = Promise.resolve();

  /**
   * Wraps `inner`; reports go to `targets`.
   * @param inner the logger records are forwarded to
   * @param targets where to report
   * @param warn receives problems writing metrics or sending heartbeats
   */
  constructor(inner: Logger, targets: ReportTargets, warn: (message: string) => void) {
    this.#targets = targets;
    this.#warn = warn;
    this.logger = {
      log: (record) => {
        inner.log(record);
        try {
          this.#observe(record);
        } catch { /* observing never breaks a job */ }
      },
    };
  }

  #observe(r: LogRecord): void {
    const source = typeof r.source === "string" ? r.source : undefined;
    const database = source ? databaseStem(source) : String(r.database ?? "");
    if (r.event === "backup.start") this.#started.set(database, performance.now());
    if (r.event === "backup.done" || r.event === "backup.failed") {
      const ok = r.event === "backup.done";
      const begun = this.#started.get(database);
      this.#runs.push({
        database,
        kind: "backup",
        ok,
        endedMs: Date.now(),
        durationMs: typeof r.durationMs === "number" ? r.durationMs : begun ? performance.now() - begun : 0,
        bytes: typeof r.bytes === "number" ? r.bytes : undefined,
      });
      this.#lines.push(ok ? `${database}: published ${r.file} (${r.bytes} bytes)` : `${database}: ${r.error}`);
    }
    if (["job.done", "job.failed", "job.lost", "job.expired"].includes(r.event)) {
      const report: RunReport = {
        ok: r.event === "job.done",
        summary: [String(r.msg), ...this.#lines].join("\n") + "\n",
        runs: this.#runs,
      };
      this.#runs = [];
      this.#lines = [];
      this.#chain = this.#chain.then(() => reportRun(this.#targets, report, { warn: this.#warn }));
    }
  }

  /** Resolves when every report started so far is done. */
  settled(): Promise<void> {
    return this.#chain;
  }
}
