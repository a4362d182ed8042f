/**
 * Test support: running the `sqlbk` CLI as an unprivileged user, so file modes apply
 * (root ignores them). As root it runs through util-linux's `setpriv` as `nobody`, with a
 * copy of Deno's npm cache that user can read; as any other user it runs as that user.
 *
 * @module
 */

import { join } from "node:path";
import { CLI_PERMISSIONS, type Output, ROOT, run } from "./db.ts";

/** Runs `sqlbk ARGS` unprivileged; dispose it to remove its Deno cache copy. */
export interface Unprivileged extends AsyncDisposable {
  /** Whether runs really drop root (false: the tests already run unprivileged). */
  dropsRoot: boolean;
  /** Runs `sqlbk ARGS` as the unprivileged user. */
  sqlbk(args: string[], options?: { cwd?: string }): Promise<Output>;
}

/**
 * Prepares unprivileged runs. The directories they use must be reachable by `nobody`
 * (a test's temp directory is 0700: chmod it 0755).
 */
export async function unprivileged(): Promise<Unprivileged> {
  const root = (await run("id", ["-u"])).stdout.trim() === "0";
  const cli = ["run", "--quiet", "--cached-only", ...CLI_PERMISSIONS, join(ROOT, "cli/main.ts")];
  if (!root) {
    return {
      dropsRoot: false,
      sqlbk: (args, options = {}) => run(Deno.execPath(), [...cli, ...args], options),
      async [Symbol.asyncDispose]() {},
    };
  }
  const info = JSON.parse((await run(Deno.execPath(), ["info", "--json"])).stdout) as { npmCache: string };
  const denoDir = await Deno.makeTempDir({ prefix: "sqlbk-nobody-deno-" });
  const cp = await run("cp", ["-r", info.npmCache, join(denoDir, "npm")]);
  if (cp.code !== 0) throw new Error(`cp: ${cp.stderr}`);
  const chmod = await run("chmod", ["-R", "a+rwX", denoDir]);
  if (chmod.code !== 0) throw new Error(`chmod: ${chmod.stderr}`);
  return {
    dropsRoot: true,
    sqlbk: (args, options = {}) =>
      run("setpriv", [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "env",
        "HOME=/tmp",
        `DENO_DIR=${denoDir}`,
        Deno.execPath(),
        ...cli,
        ...args,
      ], options),
    async [Symbol.asyncDispose]() {
      await Deno.remove(denoDir, { recursive: true }).catch(() => {});
    },
  };
}
