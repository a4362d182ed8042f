/**
 * OpenSSH's host patterns, shared by known_hosts and ssh config: `*` and `?` wildcards,
 * comma-separated lists, and `!` negation (a negated match excludes the name outright).
 *
 * @module
 */

/**
 * Whether `text` matches the wildcard `pattern` (`*` any run, `?` one character).
 *
 * @example
 * ```ts
 * globMatches("*.example.com", "DB.example.com", { ignoreCase: true }); // true
 * ```
 */
export function globMatches(pattern: string, text: string, options: { ignoreCase?: boolean } = {}): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${source}$`, options.ignoreCase ? "i" : "").test(text);
}

/**
 * Whether `name` matches a list of host patterns (comma-separated within each item):
 * some pattern matches and no `!pattern` does. Host names compare case-insensitively.
 *
 * @example
 * ```ts
 * hostListMatches(["*.example.com,!bad.example.com"], "db.example.com"); // true
 * ```
 */
export function hostListMatches(patterns: string[], name: string): boolean {
  let matched = false;
  for (const raw of patterns.flatMap((p) => p.split(","))) {
    const negated = raw.startsWith("!");
    if (globMatches(negated ? raw.slice(1) : raw, name, { ignoreCase: true })) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}
