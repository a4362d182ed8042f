/**
 * Optional native libraries over FFI (libz for the verifying gunzip): sqlbk works
 * without them, only slower.
 *
 * @module
 */

import { ConfigError, errorMessage } from "./errors.ts";

/**
 * Loads an optional library: the path in `envVar` when it is set (`none` means do not
 * load one), else the first of `names` that loads, else null. Like `SQLBK_SQLITE_LIB`,
 * an explicit path that fails to load is an error, never silently replaced.
 *
 * @example
 * ```ts
 * const lib = loadOptionalLibrary("SQLBK_LIBZ", ["libz.so.1"], { zlibVersion: { parameters: [], result: "pointer" } });
 * ```
 */
export function loadOptionalLibrary<S extends Deno.ForeignLibraryInterface>(
  envVar: string,
  names: string[],
  symbols: S,
): Deno.DynamicLibrary<S> | null {
  const fromEnv = Deno.env.get(envVar);
  if (fromEnv === "none") return null;
  if (fromEnv) {
    try {
      return Deno.dlopen(fromEnv, symbols);
    } catch (err) {
      throw new ConfigError(
        `Cannot load ${envVar}="${fromEnv}": ${
          dlopenReason(err)
        } (point it at the library, set it to "none", or unset it to use the system's)`,
        { cause: err },
      );
    }
  }
  for (const name of names) {
    try {
      return Deno.dlopen(name, symbols);
    } catch { /* try the next name */ }
  }
  return null;
}

/**
 * The first line of a `Deno.dlopen` failure, without the "Could not open library: "
 * prefix Deno's message repeats.
 *
 * @example
 * ```ts
 * try { Deno.dlopen("/nonexistent", {}); } catch (err) { dlopenReason(err); }
 * // "/nonexistent: cannot open shared object file: No such file or directory"
 * ```
 */
export function dlopenReason(err: unknown): string {
  return errorMessage(err).split("\n")[0].replace(/^(Could not open library: )+/, "");
}
