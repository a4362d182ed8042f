/**
 * `sqlbk verify`: the pull client's checks on local backup files.
 *
 * @module
 */

import { parseFlags } from "../args.ts";
import { CHECK_FLAGS, CHECK_HELP, checkFlags } from "../check_flags.ts";
import { checkDecompressors } from "../../src/codecs/codec.ts";
import { ConfigError, errorMessage, ExitCode, exitCodeOf, VerifyError } from "../../src/errors.ts";
import { loadSqlite } from "../../src/sqlite/ffi.ts";
import { verifyBackup } from "../../src/verify.ts";
import { loadConfig } from "../../src/config.ts";
import { verifyWithProbes } from "../../src/monitor/probes.ts";
import { PROBE_FLAGS, PROBE_HELP, probesOf } from "../monitor.ts";
import { printable, safeJson } from "../../src/printable.ts";

/** One line for the command list. */
export const summary = "Verify backup files: checksum, full decompression, integrity check on every core";

/** The help text. */
export const help = `sqlbk verify: prove local backup files sound. For each file: its SHA-256
against the sidecar when there is one (.<file>.sha256 beside it, or the <file>.sha256 of earlier
versions), a complete decompression (gzip or zstd, as the file's first bytes say; a .gz or .zst
name must match them) into a temp file beside it (or in --temp-dir), and the integrity check:
every part returning exactly one row, "ok".

Usage:
  sqlbk verify FILE... [options]

Options:
      --no-sidecar           do not compare with the sidecar even when it exists (default: compare)
${CHECK_HELP}
      --json                 print one JSON object per file on stdout
      --temp-dir DIR         decompress archives into DIR to check them, for a backup directory this
                             user cannot write; DIR needs room for the whole database and gets the
                             .sqlbk-verify.lock (default: the archive's own directory)
${PROBE_HELP}
  -c, --config FILE          read probes from this config's "probes" key (default: none)
  -h, --help                 show this help

Output: "ok <file> sha256=<hex> [(checksum matches)] check=full|quick (<ms> ms)" per sound file
on stdout, or with --json one object per file: {"path","ok","sha256","checksumVerified",
"databaseBytes","codec","check","checkMs"}, or {"path","ok":false,"error"} for a file that
failed. Errors on stderr.

Exit codes: 0 all sound, 1 a file could not be read, 2 usage error (also a directory given as a
FILE, or an archive whose directory this user cannot write without --temp-dir), 3 a file failed
verification (or a probe).

Examples:
  sqlbk verify /srv/pulled/app-2025-07-01T10-30-00Z-vacuum.bck.gz
  sqlbk verify /srv/pulled/*.bck.gz --json
  sqlbk verify app.bck.gz --probe "SELECT count(*) > 0 FROM users"
  sqlbk verify big-2025-07-01T10-30-00Z-online.bck.zst --check quick
  sqlbk verify /mnt/ro/app-2025-07-01T10-30-00Z-online.bck.gz --temp-dir /var/tmp
`;

/** Runs `sqlbk verify`. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    "no-sidecar": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    config: { type: "string", short: "c" },
    "temp-dir": { type: "string" },
    ...PROBE_FLAGS,
    ...CHECK_FLAGS,
  }, { command: "verify" });
  const { check, jobs } = checkFlags(values);
  const cfg = values.config !== undefined ? await loadConfig(values.config, { requireSource: false }) : undefined;
  const probes = probesOf(values, cfg?.monitor);
  if (positionals.length === 0) throw new ConfigError(`Nothing to verify: give one or more backup files`);
  checkDecompressors(); // a bad SQLBK_LIBZ is a configuration error for the whole run, not a per-file failure
  loadSqlite(); // so is a bad SQLBK_SQLITE_LIB
  const tempDir = values["temp-dir"];
  if (tempDir !== undefined) await _checkTempDir(tempDir);
  let verifyFailed = false;
  let usageFailed = false;
  let otherFailed = false;
  for (const path of positionals) {
    try {
      const options = { useSidecar: !values["no-sidecar"], check, jobs, tempDir };
      const r = probes.length ? await verifyWithProbes(path, probes, options) : await verifyBackup(path, options);
      if (values.json) {
        console.log(safeJson({
          path,
          ok: true,
          sha256: r.sha256,
          checksumVerified: r.checksumVerified,
          databaseBytes: r.databaseBytes,
          codec: r.codec,
          check: r.check,
          checkMs: r.checkMs,
        }));
      } else {
        console.log(
          `ok ${printable(path, Infinity)} sha256=${r.sha256}${
            r.checksumVerified ? " (checksum matches)" : ""
          } check=${r.check} (${r.checkMs} ms)`,
        );
        if (r.check === "quick") {
          console.error(`${printable(path, Infinity)}: quick check only (quick_check; no index cross-checks)`);
        }
      }
    } catch (err) {
      if (err instanceof VerifyError) verifyFailed = true;
      else if (exitCodeOf(err) === ExitCode.USAGE) usageFailed = true;
      else otherFailed = true;
      if (values.json) console.log(safeJson({ path, ok: false, error: errorMessage(err) }));
      console.error(`error: ${printable(errorMessage(err), Infinity)}`);
    }
  }
  return verifyFailed ? ExitCode.VERIFY : usageFailed ? ExitCode.USAGE : otherFailed ? ExitCode.FAILURE : ExitCode.OK;
}

/** Refuses a --temp-dir that is missing or not a directory (exit 2) before any file is read. */
async function _checkTempDir(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "it does not exist" : errorMessage(err);
    throw new ConfigError(`Invalid --temp-dir "${dir}": ${why} (give an existing, writable directory)`, { cause: err });
  }
  if (!info.isDirectory) throw new ConfigError(`Invalid --temp-dir "${dir}": it is not a directory`);
}
