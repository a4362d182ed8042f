/**
 * Which SQL text can be a restore probe (see `runProbes`): exactly one statement. Read
 * when flags and config files are, before anything runs, so a bad probe is a usage error.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { isEmptySql, sqlAfterFirstStatement } from "../sqlite/sql_text.ts";

/**
 * Why `probe` cannot be a probe, or null when it can: it must hold exactly one SQL
 * statement (an empty one, or a second statement that would never run, is refused).
 * The text reads after `Invalid --probe "<probe>": `.
 *
 * @example
 * ```ts
 * probeProblem("SELECT 1; SELECT 0"); // 'it holds more than one statement (after the first comes "SELECT 0"); ...'
 * probeProblem("SELECT count(*) > 0 FROM users;"); // null
 * ```
 */
export function probeProblem(probe: string): string | null {
  if (isEmptySql(probe)) {
    return `it is empty; a probe is one SQL query returning one row whose first value is true, e.g. "SELECT count(*) > 0 FROM users"`;
  }
  const rest = sqlAfterFirstStatement(probe);
  if (!isEmptySql(rest)) {
    const after = rest.replace(/\s+/g, " ").trim();
    return `it holds more than one statement (after the first comes "${
      after.length > 60 ? `${after.slice(0, 57)}...` : after
    }"), and only one would run; give each statement as a probe of its own`;
  }
  return null;
}

/**
 * Throws a {@link ConfigError} (exit 2) for the first of `probes` that
 * {@link probeProblem} refuses; `where` names where it came from, e.g. `--probe`.
 *
 * @example
 * ```ts
 * checkProbes(["SELECT 1"], "--probe");
 * ```
 */
export function checkProbes(probes: readonly string[], where: string): void {
  for (const probe of probes) {
    const problem = probeProblem(probe);
    if (problem !== null) throw new ConfigError(`Invalid ${where} ${JSON.stringify(probe)}: ${problem}`);
  }
}
