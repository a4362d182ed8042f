/**
 * Reading SQL text without a database: where its first statement ends, and whether what
 * follows holds anything but whitespace, semicolons and comments. Used to refuse SQL that
 * holds a second statement where only one runs (`Database.prepare`, probes).
 *
 * @module
 */

/**
 * Whether `sql` holds nothing SQLite would run: only whitespace, semicolons, `-- line`
 * and `/* block *\/` comments.
 *
 * @example
 * ```ts
 * isEmptySql("  ; -- done\n"); // true
 * isEmptySql("SELECT 1"); // false
 * ```
 */
export function isEmptySql(sql: string): boolean {
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === ";" || /\s/.test(c)) i++;
    else if (sql.startsWith("--", i)) {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith("/*", i)) {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2; // SQLite ends an unclosed block comment at the end of the text
    } else return false;
  }
  return true;
}

/**
 * What follows the first statement of `sql`: the text after its first `;` that is not
 * inside a string, a quoted name or a comment ("" when there is none). A statement that
 * holds `;` itself (a `CREATE TRIGGER` body) counts as more than one.
 *
 * @example
 * ```ts
 * sqlAfterFirstStatement("SELECT ';' ; SELECT 0"); // " SELECT 0"
 * sqlAfterFirstStatement("SELECT 1 -- a; b"); // ""
 * ```
 */
export function sqlAfterFirstStatement(sql: string): string {
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === ";") return sql.slice(i + 1);
    if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      let j = i + 1;
      for (;;) {
        j = sql.indexOf(close, j);
        if (j < 0) return ""; // unterminated: SQLite reports it when the statement is prepared
        if (close !== "]" && sql[j + 1] === close) j += 2; // a doubled quote stands for itself
        else break;
      }
      i = j + 1;
    } else if (sql.startsWith("--", i)) {
      const end = sql.indexOf("\n", i);
      if (end < 0) return "";
      i = end + 1;
    } else if (sql.startsWith("/*", i)) {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) return "";
      i = end + 2;
    } else i++;
  }
  return "";
}
