/**
 * The monitoring flags shared by `backup`, `pull`, `run` and `status` (`--metrics-file`,
 * `--heartbeat-url`) and by `verify`, `pull` and `restore` (`--probe`), with their help
 * lines.
 *
 * @module
 */

import type { MonitorConfig } from "../src/monitor/monitor_config.ts";
import { checkHeartbeatUrl } from "../src/monitor/monitor_config.ts";
import { checkProbes } from "../src/monitor/probe_check.ts";
import type { ReportTargets } from "../src/monitor/report.ts";
import { printable } from "../src/printable.ts";

/** The flag table of `--metrics-file` and `--heartbeat-url`. */
export const REPORT_FLAGS = {
  "metrics-file": { type: "string" },
  "heartbeat-url": { type: "string" },
} as const;

/** Help lines for {@link REPORT_FLAGS}. */
export const REPORT_HELP =
  `      --metrics-file FILE    update this Prometheus textfile after the run, atomically, keeping
                             other databases' series (default: config's metrics_file, else none)
      --heartbeat-url URL    after the run, POST a short summary to URL (success) or URL/fail
                             (failure), 10s timeout; never changes the exit code
                             (default: config's heartbeat_url, else none)`;

/** The flag table of `--probe`. */
export const PROBE_FLAGS = { probe: { type: "string", multiple: true } } as const;

/** Help lines for {@link PROBE_FLAGS}. */
export const PROBE_HELP =
  `      --probe SQL            after the integrity check, run SQL read-only on the verified copy; it
                             must return one row whose first value is true or non-zero, else the
                             verification fails (exit 3); one statement each (an empty or
                             many-statement probe is exit 2); repeatable (default: config's probes)`;

/**
 * Where a run reports: flags win over the config's keys.
 *
 * @example
 * ```ts
 * const targets = reportTargets({ "metrics-file": "sqlbk.prom" });
 * ```
 */
export function reportTargets(
  values: { "metrics-file"?: string; "heartbeat-url"?: string },
  monitor?: MonitorConfig,
): ReportTargets {
  const heartbeatUrl = values["heartbeat-url"] ?? monitor?.heartbeatUrl;
  if (values["heartbeat-url"] !== undefined) checkHeartbeatUrl(values["heartbeat-url"], "--heartbeat-url");
  return { metricsFile: values["metrics-file"] ?? monitor?.metricsFile, heartbeatUrl };
}

/**
 * The probes to run: the `--probe` flags, else the config's `probes`.
 *
 * @example
 * ```ts
 * probesOf({ probe: ["SELECT count(*) > 0 FROM users"] }); // ["SELECT count(*) > 0 FROM users"]
 * ```
 */
export function probesOf(values: { probe?: string[] }, monitor?: MonitorConfig): string[] {
  const flags = values.probe ?? [];
  checkProbes(flags, "--probe"); // an empty or many-statement probe is a usage error, never dropped
  return flags.length > 0 ? flags : monitor?.probes ?? [];
}

/** Prints a warning line on stderr (metrics and heartbeat problems). */
export function warn(message: string): void {
  console.error(`warning: ${printable(message, Infinity)}`);
}
