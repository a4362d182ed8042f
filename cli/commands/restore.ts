/**
 * `sqlbk restore`: verify a backup and write the database to a path atomically.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { CHECK_FLAGS, CHECK_HELP, checkFlags } from "../check_flags.ts";
import { ConfigError, ExitCode } from "../../src/errors.ts";
import { restoreBackup } from "../../src/restore.ts";
import { abortOnSignals } from "../signals.ts";
import { loadConfig } from "../../src/config.ts";
import { PROBE_FLAGS, PROBE_HELP, probesOf } from "../monitor.ts";
import { printable, safeJson } from "../../src/printable.ts";

/** One line for the command list. */
export const summary = "Verify a backup and restore the database to a path, atomically";

/** The help text. */
export const help = `sqlbk restore: verify a backup (checksum when a .sha256 sidecar exists, full decompression
of a gzip or zstd archive, the integrity check on every core), then write the database to PATH
atomically (temp file beside it, fsync, rename, fsync the directory).

Usage:
  sqlbk restore FILE --to PATH [--force] [--probe SQL]... [--config FILE]

Options:
  -t, --to PATH              the database file to write (required)
  -f, --force                replace an existing PATH; the old file is kept as PATH.bak-<timestamp>
                             (default: refuse to replace)
${CHECK_HELP}
      --json                 print {"path","previous","sha256","bytes","check"} on stdout
${PROBE_HELP}
  -c, --config FILE          read probes from this config's "probes" key (default: none)
  -h, --help                 show this help

Restore refuses while PATH-wal exists, or PATH-journal exists and a transaction holds the
database (tried through SQLite; an idle TRUNCATE/PERSIST journal is fine): the database is in
use. Stop the application first. A symlink PATH is resolved: the file it names is replaced.
The restored database is one file in journal_mode=DELETE. PATH's directory must exist; a
restore holds .sqlbk-restore.lock there and sweeps the temp files of killed restores.

Exit codes: 0 restored, 1 failure (or PATH in use), 2 usage error (or PATH exists without
--force, PATH or FILE is a directory, PATH's directory is missing or this user cannot write
it), 3 the backup failed verification or a probe (nothing was written).

Examples:
  sqlbk restore /srv/pulled/app-2025-07-01T10-30-00Z-vacuum.bck.gz --to ./app.db
  sqlbk restore app-latest.bck.gz --to /srv/app/data/app.db --force
  sqlbk restore app.bck.gz --to ./app.db --probe "SELECT count(*) > 0 FROM users"
`;

/** Runs `sqlbk restore`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    to: { type: "string", short: "t" },
    force: { type: "boolean", short: "f", default: false },
    json: { type: "boolean", default: false },
    config: { type: "string", short: "c" },
    ...PROBE_FLAGS,
    ...CHECK_FLAGS,
  }, { command: "restore" });
  const { check, jobs } = checkFlags(values);
  if (positionals.length !== 1) {
    throw new ConfigError(`Give exactly one backup file to restore (see "sqlbk restore --help")`);
  }
  if (values.to === undefined) throw new ConfigError(`Missing --to PATH: where to write the restored database`);
  const cfg = values.config !== undefined ? await loadConfig(values.config, { requireSource: false }) : undefined;
  const probes = probesOf(values, cfg?.monitor);
  const { signal, dispose } = abortOnSignals();
  try {
    const r = await restoreBackup(positionals[0], values.to, { force: values.force, signal, probes, check, jobs });
    if (values.json) console.log(safeJson(r));
    else {
      console.log(printable(r.path, Infinity));
      console.error(
        printable(
          `restored ${positionals[0]} to ${r.path} (${r.check} check)${
            r.previous ? `; the old file is kept as ${r.previous}` : ""
          }`,
          Infinity,
        ),
      );
    }
  } finally {
    dispose();
  }
  return ExitCode.OK;
}
