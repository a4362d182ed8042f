/**
 * `sqlbk blueprint`: prints or writes a commented template config.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { ConfigError, ExitCode } from "../../src/errors.ts";
import { blueprint } from "../../src/blueprint.ts";
import { writeFileAtomic } from "../../src/fs.ts";
import { AlreadyExistsError } from "../../src/fs.ts";

/** One line for the command list. */
export const summary = "Print a commented template config, or write it to a file";

/** The help text. */
export const help = `sqlbk blueprint: print a commented template config (every key, its default, what it does).

Usage:
  sqlbk blueprint [-o FILE] [--force]

Options:
  -o, --output FILE   write the template to FILE instead of stdout
  --force             replace FILE if it exists (default: refuse)
  -h, --help          show this help

Examples:
  sqlbk blueprint > sqlbk.toml
  sqlbk blueprint -o /etc/sqlbk.toml
`;

/** Runs `sqlbk blueprint`. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    output: { type: "string", short: "o" },
    force: { type: "boolean", default: false },
  }, { command: "blueprint", allowPositionals: false });
  const text = blueprint();
  if (values.output === undefined) {
    await Deno.stdout.write(new TextEncoder().encode(text));
    return ExitCode.OK;
  }
  try {
    await writeFileAtomic(values.output, text, { overwrite: values.force });
  } catch (err) {
    if (err instanceof AlreadyExistsError) {
      throw new ConfigError(`Refusing to overwrite "${values.output}": it exists (use --force to replace it)`);
    }
    if (err instanceof Deno.errors.NotFound) {
      throw new ConfigError(`Cannot write "${values.output}": its directory does not exist`);
    }
    throw err;
  }
  console.error(`wrote ${values.output}`);
  return ExitCode.OK;
}
