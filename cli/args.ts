/**
 * Flag parsing shared by the subcommands: node:util parseArgs in strict mode, with its
 * errors turned into one-line usage errors (exit code 2).
 *
 * @module
 */

import { parseArgs as nodeParseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError } from "../src/errors.ts";

/** The option table of a subcommand, as node:util parseArgs takes it. */
export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Options for {@link parseFlags}. */
export interface ParseFlagsOptions {
  /** The subcommand, named in the error's `sqlbk CMD --help` hint. Required: no default. */
  command: string;
  /** Whether arguments that are not flags are allowed (returned as `positionals`). Default `true`. */
  allowPositionals?: boolean;
}

/**
 * Parses `args` against the flag table `flags`; unknown flags, missing values and stray
 * arguments become a {@link ConfigError} naming the flag and pointing at
 * `sqlbk ${options.command} --help`.
 *
 * @example
 * ```ts
 * const { values, positionals } = parseFlags(["app.db", "--json"], {
 *   json: { type: "boolean" },
 * }, { command: "backup" });
 * ```
 */
export function parseFlags<T extends Options>(args: string[], flags: T, options: ParseFlagsOptions) {
  const { command } = options;
  try {
    return nodeParseArgs({
      args,
      options: flags,
      strict: true,
      allowPositionals: options.allowPositionals ?? true,
      allowNegative: false,
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`${_ambiguous(msg, args) ?? _first(msg)} (see "sqlbk ${command} --help")`, { cause: err });
  }
}

/** parseArgs' "argument is ambiguous" (a value that starts with "-"), said with the value and the fix. */
function _ambiguous(msg: string, args: string[]): string | null {
  const m = /^Option '(?:(-\w), )?(--[\w-]+)' argument is ambiguous/.exec(msg);
  if (!m) return null;
  const at = args.findIndex((a, i) => (a === m[2] || a === m[1]) && args[i + 1]?.startsWith("-"));
  if (at < 0) return null;
  const value = args[at + 1];
  return `Invalid ${m[2]} "${value}": a value starting with "-" reads as a flag; write ${m[2]}=${value} to pass it`;
}

function _first(msg: string): string {
  const line = msg.split("\n")[0].replace(/\. To specify a positional argument.*$/, "");
  return line.charAt(0).toUpperCase() + line.slice(1).replace(/\.$/, "");
}

/** Options for {@link intFlag}. */
export interface IntFlagOptions {
  /** The lowest allowed value. Default `0`. */
  min?: number;
}

/**
 * Parses the whole number `value` of the flag `flag` (named in the error), with
 * `options.min` as the lowest allowed value.
 *
 * @example
 * ```ts
 * intFlag("--pages-per-step", "100", { min: 1 }); // 100
 * ```
 */
export function intFlag(flag: string, value: string, options: IntFlagOptions = {}): number {
  const { min = 0 } = options;
  if (!/^-?\d+$/.test(value.trim()) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new ConfigError(`Invalid ${flag} "${value}": expected a whole number of at least ${min}`);
  }
  return Number(value);
}

/** True when standard error is a terminal (progress bars are drawn only then). */
export function stderrIsTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}
