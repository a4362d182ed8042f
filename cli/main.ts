/**
 * The `sqlbk` command line: a flat dispatcher over `cli/commands/<name>.ts`.
 * Only this file calls `Deno.exit`.
 *
 * @module
 */

import { errorMessage, ExitCode, exitCodeOf } from "../src/errors.ts";
import { VERSION } from "../src/version.ts";
import { printable } from "../src/printable.ts";

/** What every subcommand file exports. */
export interface Command {
  /** One line for the command list. */
  summary: string;
  /** The full help text: description, usage, options with defaults, examples. */
  help: string;
  /** Runs the command; resolves to the exit code. Throws for errors (mapped to exit codes here). */
  run(args: string[]): Promise<number>;
}

/** The subcommands, loaded on demand. */
export const COMMANDS: Record<string, () => Promise<Command>> = {
  backup: () => import("./commands/backup.ts"),
  blueprint: () => import("./commands/blueprint.ts"),
  "insert-job": () => import("./commands/insert_job.ts"),
  run: () => import("./commands/run.ts"),
  "config-put": () => import("./commands/config_put.ts"),
  pull: () => import("./commands/pull.ts"),
  verify: () => import("./commands/verify.ts"),
  restore: () => import("./commands/restore.ts"),
  list: () => import("./commands/list.ts"),
  status: () => import("./commands/status.ts"),
};

/** The top-level help text. */
export async function mainHelp(): Promise<string> {
  const lines = [];
  for (const [name, load] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(12)} ${(await load()).summary}`);
  }
  return `sqlbk ${VERSION}: consistent, verified backups of live SQLite databases.

Usage:
  sqlbk <command> [options]
  sqlbk help <command>
  sqlbk --version

Commands:
${lines.join("\n")}

Run "sqlbk <command> --help" for a command's options.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error, 3 verification failed.
`;
}

/**
 * Runs the CLI with `args` and resolves to the exit code, printing errors as one line.
 *
 * @example
 * ```ts
 * const code = await main(["--version"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  try {
    if (name === undefined || name === "--help" || name === "-h") {
      const text = await mainHelp();
      if (name === undefined) {
        console.error(text);
        return ExitCode.USAGE;
      }
      console.log(text);
      return ExitCode.OK;
    }
    if (name === "--version" || name === "-V" || name === "version") {
      console.log(`sqlbk ${VERSION}`);
      return ExitCode.OK;
    }
    if (name === "help") {
      if (rest.length === 0) {
        console.log(await mainHelp());
        return ExitCode.OK;
      }
      const command = await _load(rest[0]);
      if (!command) return ExitCode.USAGE;
      console.log(command.help);
      return ExitCode.OK;
    }
    const command = await _load(name);
    if (!command) return ExitCode.USAGE;
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(command.help);
      return ExitCode.OK;
    }
    return await command.run(rest);
  } catch (err) {
    console.error(`error: ${printable(errorMessage(err), Infinity)}`);
    if (Deno.env.get("SQLBK_DEBUG") && err instanceof Error) console.error(err.stack);
    return exitCodeOf(err);
  }
}

async function _load(name: string): Promise<Command | null> {
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    const known = Object.keys(COMMANDS);
    const near = known.find((k) => k.startsWith(name.slice(0, 2)));
    console.error(
      `error: unknown command "${name}"${near ? `; did you mean "${near}"?` : ""} (commands: ${
        known.join(", ")
      }; see "sqlbk --help")`,
    );
    return null;
  }
  return await load();
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
