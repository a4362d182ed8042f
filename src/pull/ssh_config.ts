/**
 * The parts of OpenSSH's `~/.ssh/config` the pull client honours: `Host` blocks and their
 * `HostName`, `User`, `Port` and `IdentityFile`, matched as `ssh` matches them (patterns
 * with `*`, `?` and `!negation`; the first value obtained for a key wins; every
 * `IdentityFile` adds up), and `Include` (globs in the file name, paths relative to
 * `~/.ssh`, read in place, 16 levels deep at most). `Match` blocks are not evaluated and
 * never apply.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { globMatches, hostListMatches } from "./pattern.ts";

/** What `~/.ssh/config` says about one host. */
export interface SshHostConfig {
  /** The real host name (`HostName`, with `%h` expanded), or the alias itself. */
  hostName: string;
  /** `User`, when set. */
  user?: string;
  /** `Port`, when set. */
  port?: number;
  /** Every `IdentityFile`, in order, with `~` and `%d %u %h %r %%` expanded. */
  identityFiles: string[];
}

interface _Block {
  patterns: string[] | null; // null: a Match block (never applies)
  options: [string, string][];
}

/** Splits a config line into keyword and arguments (`Key value`, `Key=value`, quotes). */
function _tokens(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] ?? m[2]);
  return out;
}

/** How `Include` finds files: the directory relative names start from, and a reader. */
interface _IncludeContext {
  /** `~` expansion. */
  home: string;
  /** Reads a file's text, or returns null when it cannot be read. */
  read: (path: string) => string | null;
  /** Lists a directory's entries, or returns [] when it cannot be read. */
  list: (dir: string) => string[];
}

function _parse(text: string, include?: _IncludeContext): _Block[] {
  const blocks: _Block[] = [{ patterns: ["*"], options: [] }];
  _parseInto(blocks, text, include, 0);
  return blocks;
}

function _parseInto(blocks: _Block[], text: string, include: _IncludeContext | undefined, depth: number): void {
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = /^(\S+?)\s*=\s*(.*)$/.exec(line);
    const tokens = eq && !/\s/.test(eq[1]) ? [eq[1], ..._tokens(eq[2])] : _tokens(line);
    if (tokens.length === 0) continue;
    const key = tokens[0].toLowerCase();
    if (key === "host") blocks.push({ patterns: tokens.slice(1), options: [] });
    else if (key === "match") blocks.push({ patterns: null, options: [] });
    else if (key === "include") {
      if (!include || depth >= 16) continue;
      // The included text reads as if written here: its options before any Host line
      // belong to the enclosing block, its Host lines open blocks of their own; after it,
      // the enclosing block goes on (as OpenSSH restores its state after an Include).
      const outer = blocks[blocks.length - 1].patterns;
      for (const path of tokens.slice(1).flatMap((arg) => _expandInclude(arg, include))) {
        const included = include.read(path);
        if (included !== null) _parseInto(blocks, included, include, depth + 1);
      }
      if (blocks[blocks.length - 1].patterns !== outer) blocks.push({ patterns: outer, options: [] });
    } else blocks[blocks.length - 1].options.push([key, tokens.slice(1).join(" ")]);
  }
}

/** The files one `Include` argument names: `~` expanded, relative to `~/.ssh`, a glob in the last part. */
function _expandInclude(arg: string, include: _IncludeContext): string[] {
  let path = arg === "~" || arg.startsWith("~/") ? join(include.home, arg.slice(1)) : arg;
  if (!isAbsolute(path)) path = join(include.home, ".ssh", path);
  const dir = dirname(path);
  const last = path.slice(dir.length + 1);
  if (!/[*?]/.test(last)) return [path];
  return include.list(dir).filter((name) => !name.startsWith(".") && globMatches(last, name)).sort().map((name) =>
    join(dir, name)
  );
}

/**
 * Resolves `host` against the text of an ssh config file.
 *
 * @param text the config file's text
 * @param host the host as the user typed it (an alias or a name)
 * @param options `home` expands `~` and `%d` (default: `$HOME`); `localUser` expands `%u`;
 *   `followIncludes` reads `Include`d files (default true)
 *
 * @example
 * ```ts
 * const cfg = resolveSshConfig("Host backup\n  HostName 10.0.0.5\n  User pull\n  Port 2222\n", "backup");
 * cfg.hostName; // "10.0.0.5"
 * ```
 */
export function resolveSshConfig(
  text: string,
  host: string,
  options: { home?: string; localUser?: string; followIncludes?: boolean } = {},
): SshHostConfig {
  const home = options.home ?? Deno.env.get("HOME") ?? "";
  const include: _IncludeContext | undefined = options.followIncludes === false ? undefined : {
    home,
    read: (path) => {
      try {
        return Deno.readTextFileSync(path);
      } catch {
        return null;
      }
    },
    list: (dir) => {
      try {
        return [...Deno.readDirSync(dir)].filter((e) => !e.isDirectory).map((e) => e.name);
      } catch {
        return [];
      }
    },
  };
  const found = new Map<string, string>();
  const identityRaw: string[] = [];
  for (const block of _parse(text, include)) {
    if (block.patterns === null || !hostListMatches(block.patterns, host)) continue;
    for (const [key, value] of block.options) {
      if (key === "identityfile") identityRaw.push(value);
      else if (!found.has(key)) found.set(key, value);
    }
  }
  const hostName = (found.get("hostname") ?? host).replace(/%h/g, host);
  const user = found.get("user");
  const portText = found.get("port");
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
      throw new Error(`Invalid "Port ${portText}" for host "${host}" in ssh config: expected 1-65535`);
    }
  }
  const localUser = options.localUser ?? Deno.env.get("USER") ?? Deno.env.get("LOGNAME") ?? "";
  const expand = (p: string) => {
    let out = p.replace(/%(.)/g, (_, c: string) => {
      switch (c) {
        case "d":
          return home;
        case "u":
          return localUser;
        case "h":
          return hostName;
        case "r":
          return user ?? localUser;
        case "%":
          return "%";
        default:
          return `%${c}`;
      }
    });
    if (out === "~" || out.startsWith("~/")) out = join(home, out.slice(1));
    return out;
  };
  return { hostName, user, port, identityFiles: identityRaw.filter((p) => p.toLowerCase() !== "none").map(expand) };
}

/**
 * Reads `~/.ssh/config` (or `path`) and resolves `host`; a missing file resolves to the
 * host itself with nothing set.
 *
 * @example
 * ```ts
 * const { hostName, user, port, identityFiles } = await loadSshConfig("backup");
 * ```
 */
export async function loadSshConfig(
  host: string,
  options: { path?: string; home?: string } = {},
): Promise<SshHostConfig> {
  const home = options.home ?? Deno.env.get("HOME") ?? "";
  const path = options.path ?? join(home, ".ssh", "config");
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied)) throw err;
  }
  return resolveSshConfig(text, host, { home });
}
