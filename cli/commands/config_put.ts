/**
 * `sqlbk config-put`: store a backup config, age-encrypted, in the app's app_config table.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { goStyleFlags } from "./insert_job.ts";
import { DEFAULT_CONFIG_SCOPE, putConfigToDb } from "../../src/app_config.ts";
import { ConfigError, ExitCode } from "../../src/errors.ts";

/** One line for the command list. */
export const summary = "Store a backup config, age-encrypted, in the app's app_config table";

/** The help text. */
export const help = `sqlbk config-put: validate a TOML backup config, encrypt it to the recipient of an age
identity (binary age v1 format) and add it as the newest app_config row of the scope, where
"sqlbk run --config-from-db" (and the Go tools) read it.

Usage:
  sqlbk config-put --dbpath FILE --age-key FILE [options] CONFIG.toml

Options:
      --dbpath FILE          the app's SQLite database (required)
      --age-key FILE         age identity file (AGE-SECRET-KEY-1...; blank and # lines skipped)
                             (required); the config is encrypted to its recipient
      --scope NAME           app_config scope (default: ${DEFAULT_CONFIG_SCOPE})
      --description TEXT     the row's description (default: none)
      --create-schema        create the app_config table when missing (default: off, error)
  -h, --help                 show this help

Output: the new row's id and created_at on stdout.

Exit codes: 0 ok, 1 failure, 2 usage error, invalid config, bad key or missing table.

Examples:
  age-keygen -o /etc/sqlbk/age.key
  sqlbk config-put --dbpath app.db --age-key /etc/sqlbk/age.key sqlbk.toml
  sqlbk config-put --dbpath app.db --age-key age.key --description "keep 14" --create-schema sqlbk.toml
`;

/** Runs `sqlbk config-put`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(goStyleFlags(args, ["dbpath", "age-key", "scope"]), {
    dbpath: { type: "string" },
    "age-key": { type: "string" },
    scope: { type: "string", default: DEFAULT_CONFIG_SCOPE },
    description: { type: "string" },
    "create-schema": { type: "boolean", default: false },
  }, { command: "config-put" });
  if (!values.dbpath) {
    throw new ConfigError(`Missing --dbpath FILE: the app's SQLite database (see "sqlbk config-put --help")`);
  }
  if (!values["age-key"]) {
    throw new ConfigError(`Missing --age-key FILE: the age identity to encrypt to (see "sqlbk config-put --help")`);
  }
  if (positionals.length !== 1) {
    throw new ConfigError(
      positionals.length === 0
        ? `Missing CONFIG.toml: the config file to store (see "sqlbk config-put --help")`
        : `Too many arguments: ${positionals.join(" ")} (give one CONFIG.toml)`,
    );
  }
  const path = positionals[0];
  let text: string;
  try {
    // rule 10: the TOML config file to store
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(
      `Cannot read config "${path}": ${err instanceof Deno.errors.NotFound ? "no such file" : String(err)}`,
      { cause: err },
    );
  }
  const { id, createdAt, scope } = await putConfigToDb(values.dbpath, text, {
    ageKeyFile: values["age-key"],
    scope: values.scope,
    description: values.description,
    createSchema: values["create-schema"],
    origin: path,
  });
  console.log(`stored app_config row ${id} (scope ${scope}, created_at ${createdAt})`);
  return ExitCode.OK;
}
