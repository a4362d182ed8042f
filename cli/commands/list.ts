/**
 * `sqlbk list`: the backups in a local directory or on a server.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { formatBytes } from "../progress.ts";
import { ConfigError, ExitCode } from "../../src/errors.ts";
import { type BackupEntry, listRemoteBackups, verifiedLabel } from "../../src/pull/list.ts";
import { listLocal } from "../local_listing.ts";
import { isRemoteTarget, parseTarget } from "../../src/pull/target.ts";
import { CONNECTION_FLAGS, CONNECTION_HELP, CONNECTION_NOTE, connectionOptions } from "./pull.ts";
import { printable, safeJson } from "../../src/printable.ts";

/** One line for the command list. */
export const summary = "List backups in a local directory or on a server (database, time, size)";

/** The help text. */
export const help = `sqlbk list: list the backups in a local directory or a remote one over SFTP, grouped by
database, oldest first: database, time, strategy, size, and for local files whether
"sqlbk pull" verified them: VERIFIED is "full" or "quick" (the check the pull ran, as its
<file>.sha256 records), "checksum" for a file with only a checksum file beside it (what a
server's backup directory holds: nothing has verified it since it was published; run
"sqlbk verify"), or "no". The newest of each database is marked * (never one dated more
than 10 minutes in the future: "future" in --json).

Usage:
  sqlbk list DIR [--json]
  sqlbk list TARGET [--json] [connection options]

TARGET is [user@]host:/remote/dir or sftp://[user@]host[:port]/remote/dir.

Options:
      --json                 one JSON object per backup:
                             {"database","file","time","strategy","codec","bytes","verified",
                             "verifiedCheck","checksum","latest","future"}; "time" is UTC,
                             whole seconds: YYYY-MM-DDTHH:MM:SSZ
${CONNECTION_HELP}
  -h, --help                 show this help

${CONNECTION_NOTE}

Exit codes: 0 ok, 1 failure (directory missing or unreadable, connection), 2 usage error (a
DIR that is not a directory).

Examples:
  sqlbk list /srv/pulled
  sqlbk list backup@db1.example.com:/var/backups/app --json
`;

/** Runs `sqlbk list`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    json: { type: "boolean", default: false },
    ...CONNECTION_FLAGS,
  }, { command: "list" });
  if (positionals.length !== 1) throw new ConfigError(`Give one DIR or TARGET to list (see "sqlbk list --help")`);
  const where = positionals[0];
  let rows: BackupEntry[];
  if (isRemoteTarget(where)) {
    rows = await listRemoteBackups(parseTarget(where), connectionOptions(values));
  } else {
    rows = await listLocal(where);
  }
  if (values.json) {
    for (const r of rows) console.log(safeJson(r));
    return ExitCode.OK;
  }
  if (rows.length === 0) {
    console.error(`no backups in ${printable(where, Infinity)}`);
    return ExitCode.OK;
  }
  const table = rows.map((r) => [
    printable(r.database, Infinity),
    r.time,
    r.strategy ?? "-",
    formatBytes(r.bytes),
    verifiedLabel(r),
    `${printable(r.file, Infinity)}${r.latest ? " *" : ""}`,
  ]);
  const head = ["DATABASE", "TIME", "STRATEGY", "SIZE", "VERIFIED", "FILE"];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  for (const row of [head, ...table]) console.log(row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  return ExitCode.OK;
}
