/**
 * Optional native libraries over FFI (libz for the verifying gunzip): sqlbk works
 * without them, only slower.
 *
 * @module
 */

import { ConfigError, errorMessage } from "./errors.ts";

/** Options for {@link loadOptionalLibrary}. */
export interface OptionalLibraryOptions {
  /** The environment variable that may name the library's path (`none`: load none). Required: no default. */
  envVar: string;
  /** The library names tried in order when `envVar` is unset. Required: no default. */
  names: string[];
}

/**
 * Loads an optional library with `symbols`: the path in `options.envVar` when it is set
 * (`none` means do not load one), else the first of `options.names` that loads, else null.
 * Like `SQLBK_SQLITE_LIB`, an explicit path that fails to load is an error, never silently
 * replaced.
 *
 * @example
 * ```ts
 * const lib = loadOptionalLibrary(
 *   { zlibVersion: { parameters: [], result: "pointer" } },
 *   { envVar: "SQLBK_LIBZ", names: ["libz.so.1"] },
 * );
 * ```
 */
export function loadOptionalLibrary<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
  options: OptionalLibraryOptions,
): Deno.DynamicLibrary<S> | null {
  const { envVar, names } = options;
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
