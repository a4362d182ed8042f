/**
 * The `--check` and `--jobs` flags `pull`, `verify` and `restore` share.
 *
 * @module
 */

import { intFlag } from "./args.ts";
import { ConfigError } from "../src/errors.ts";
import { CHECK_LEVELS, type CheckLevel, defaultJobs } from "../src/integrity.ts";

/** The flag table. */
export const CHECK_FLAGS = {
  check: { type: "string" },
  jobs: { type: "string" },
} as const;

/** The flags' help lines. */
export const CHECK_HELP =
  `      --check full|quick     full: everything PRAGMA integrity_check checks, run as quick_check plus
                             integrity_check(TABLE) per table on several connections (the single
                             integrity_check with --jobs 1 or when one table holds 90% of the work);
                             quick: quick_check only (no index cross-checks; for very large databases)
                             (default: full)
      --jobs N               connections checking at once, at least 1 (default: the cores, ${defaultJobs()} here)`;

/**
 * Reads `--check` and `--jobs`.
 *
 * @example
 * ```ts
 * checkFlags({ check: "quick", jobs: "2" }); // { check: "quick", jobs: 2 }
 * ```
 */
export function checkFlags(values: { check?: string; jobs?: string }): { check: CheckLevel; jobs?: number } {
  const check = values.check ?? "full";
  if (!CHECK_LEVELS.includes(check as CheckLevel)) {
    throw new ConfigError(`Invalid --check "${check}": expected "full" or "quick"`);
  }
  return {
    check: check as CheckLevel,
    jobs: values.jobs === undefined ? undefined : intFlag("--jobs", values.jobs, { min: 1 }),
  };
}
