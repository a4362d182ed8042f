/**
 * Backup configs kept in the app's own database: the `app_config` table of restinpieces
 * apps, whose `content` is a TOML config encrypted with age (binary age v1 format) to an
 * X25519 identity. sqlbk reads the newest row of a scope and writes new rows the same way.
 *
 * @module
 */

import { armor, Decrypter, Encrypter, identityToRecipient } from "age-encryption";
import { parseConfig, type SqlbkConfig } from "./config.ts";
import { ConfigError, errorMessage } from "./errors.ts";
import { Database } from "./sqlite/database.ts";
import { openAppDatabase } from "./app_db.ts";

/**
 * The scope of sqlbk's backup config in `app_config`.
 *
 * @example
 * ```ts
 * await loadConfigFromDb("app.db", { ageKeyFile: "age.key", scope: DEFAULT_CONFIG_SCOPE });
 * ```
 */
export const DEFAULT_CONFIG_SCOPE = "sqlite_backup";

/**
 * The `app_config` schema, as `config-put --create-schema` creates it.
 *
 * @example
 * ```ts
 * import { APP_CONFIG_SCHEMA, Database } from "./mod.ts";
 * const db = new Database("app.db");
 * db.exec(APP_CONFIG_SCHEMA);
 * db.close();
 * ```
 */
export const APP_CONFIG_SCHEMA = `CREATE TABLE IF NOT EXISTS app_config (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    content BLOB NOT NULL,
    format TEXT NOT NULL DEFAULT 'toml',
    description TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_app_config_created ON app_config(created_at DESC);
`;

const _AGE_MAGIC = "age-encryption.org/v1\n";

/**
 * Reads the age identities (`AGE-SECRET-KEY-1...`) of a key file as `age-keygen` writes
 * it: blank lines and lines starting with `#` are skipped. Throws a {@link ConfigError}
 * naming the file and line when it holds anything else, or no identity.
 *
 * @example
 * ```ts
 * const identities = await readAgeIdentities("/etc/sqlbk/age.key");
 * ```
 */
export async function readAgeIdentities(path: string): Promise<string[]> {
  let text: string;
  try {
    // rule 10: the age key file
    text = await Deno.readTextFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "no such file" : errorMessage(err);
    throw new ConfigError(`Cannot read age key "${path}": ${why} (make one with "age-keygen -o ${path}")`, {
      cause: err,
    });
  }
  const identities: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    if (!line.startsWith("AGE-SECRET-KEY-")) {
      throw new ConfigError(
        `Invalid age key "${path}": line ${i + 1} is not an age identity (expected "AGE-SECRET-KEY-1...")`,
      );
    }
    identities.push(line);
  });
  if (identities.length === 0) {
    throw new ConfigError(`Invalid age key "${path}": no identity found (expected a line "AGE-SECRET-KEY-1...")`);
  }
  return identities;
}

/** Where the key comes from: a key file, or identities already read. */
export interface AgeKeyOptions {
  /** An age key file (see {@link readAgeIdentities}). */
  ageKeyFile?: string;
  /** Identities (`AGE-SECRET-KEY-1...`); used instead of `ageKeyFile`. */
  identities?: string[];
}

async function _identities(options: AgeKeyOptions): Promise<{ identities: string[]; source: string }> {
  if (options.identities && options.identities.length > 0) {
    return { identities: options.identities, source: "(identities given)" };
  }
  if (options.ageKeyFile) {
    return { identities: await readAgeIdentities(options.ageKeyFile), source: `"${options.ageKeyFile}"` };
  }
  throw new ConfigError(`No age key given: pass --age-key FILE (an age identity file, "AGE-SECRET-KEY-1...")`);
}

function _hasTable(db: Database): boolean {
  return db.query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'app_config'").length > 0;
}

/** One `app_config` row as read (content still encrypted). */
export interface AppConfigRow {
  /** `id`. */
  id: number;
  /** `scope`. */
  scope: string;
  /** `format`. */
  format: string;
  /** `description`. */
  description: string | null;
  /** `created_at`. */
  createdAt: string;
}

/** Options for {@link loadConfigFromDb}. */
export interface LoadConfigFromDbOptions extends AgeKeyOptions {
  /** The `app_config` scope. Default `sqlite_backup`. */
  scope?: string;
}

/**
 * Reads the newest `app_config` row of the scope (by `created_at DESC, id DESC`),
 * decrypts its content with the age key and parses it as a sqlbk TOML config. A missing
 * table or row, a format other than `toml`, a wrong key or an invalid config raise a
 * {@link ConfigError} that says which.
 *
 * @example
 * ```ts
 * import { loadConfigFromDb } from "./mod.ts";
 * const { config, row } = await loadConfigFromDb("app.db", { ageKeyFile: "age.key" });
 * console.log(`config from app_config row ${row.id}:`, config.databases.map((d) => d.name));
 * ```
 */
export async function loadConfigFromDb(
  dbPath: string,
  options: LoadConfigFromDbOptions = {},
): Promise<{ config: SqlbkConfig; row: AppConfigRow }> {
  const scope = options.scope ?? DEFAULT_CONFIG_SCOPE;
  const { identities, source } = await _identities(options);
  const db = openAppDatabase(dbPath, { mode: "readonly" });
  let raw: Record<string, unknown>;
  try {
    if (!_hasTable(db)) {
      throw new ConfigError(
        `Table "app_config" not found in "${dbPath}": store a config with ` +
          `"sqlbk config-put --dbpath ${dbPath} --age-key KEY --create-schema CONFIG.toml"`,
      );
    }
    const rows = db.query(
      `SELECT id, scope, content, format, description, created_at FROM app_config WHERE scope = ?
       ORDER BY created_at DESC, id DESC LIMIT 1`,
      [scope],
    );
    if (rows.length === 0) {
      throw new ConfigError(
        `No app_config row with scope "${scope}" in "${dbPath}": store one with ` +
          `"sqlbk config-put --dbpath ${dbPath} --age-key KEY${
            scope === DEFAULT_CONFIG_SCOPE ? "" : ` --scope ${scope}`
          } CONFIG.toml"`,
      );
    }
    raw = rows[0];
  } finally {
    db.close();
  }
  const row: AppConfigRow = {
    id: Number(raw.id),
    scope: String(raw.scope),
    format: String(raw.format ?? ""),
    description: raw.description === null ? null : String(raw.description),
    createdAt: String(raw.created_at),
  };
  const where = `app_config row ${row.id} (scope "${scope}") in "${dbPath}"`;
  if (row.format.toLowerCase() !== "toml") {
    throw new ConfigError(`Cannot use ${where}: its format is "${row.format}", expected "toml"`);
  }
  let content: Uint8Array = raw.content instanceof Uint8Array
    ? raw.content
    : new TextEncoder().encode(String(raw.content ?? ""));
  const head = new TextDecoder().decode(content.subarray(0, 64));
  if (head.startsWith("-----BEGIN AGE ENCRYPTED FILE-----")) {
    try {
      content = armor.decode(new TextDecoder().decode(content));
    } catch (err) {
      throw new ConfigError(`Cannot decrypt ${where}: invalid armored age file: ${errorMessage(err)}`, { cause: err });
    }
  } else if (!head.startsWith(_AGE_MAGIC)) {
    throw new ConfigError(`Cannot decrypt ${where}: its content is not an age-encrypted file (binary age v1 expected)`);
  }
  const decrypter = new Decrypter();
  for (const identity of identities) {
    try {
      decrypter.addIdentity(identity);
    } catch (err) {
      throw new ConfigError(`Invalid age key ${source}: ${errorMessage(err)}`, { cause: err });
    }
  }
  let text: string;
  try {
    text = await decrypter.decrypt(content, "text");
  } catch (err) {
    const msg = errorMessage(err);
    if (/no identity matched/i.test(msg)) {
      throw new ConfigError(
        `Cannot decrypt ${where} with the age key ${source}: it was encrypted to another key ` +
          `(use the identity the config was stored with)`,
        { cause: err },
      );
    }
    throw new ConfigError(`Cannot decrypt ${where}: ${msg}`, { cause: err });
  }
  return { config: parseConfig(text, { origin: where }), row };
}

/** Options for {@link putConfigToDb}. */
export interface PutConfigOptions extends AgeKeyOptions {
  /** The `app_config` scope. Default `sqlite_backup`. */
  scope?: string;
  /** The row's `description`. Default: none (NULL). */
  description?: string;
  /** Create `app_config` when missing. Default false (a missing table is an error). */
  createSchema?: boolean;
  /** Names the config in validation messages. Default "the config to store". */
  origin?: string;
}

/**
 * Validates TOML text as a sqlbk config, encrypts it to the age identity's recipient
 * (binary age v1) and adds it as the newest `app_config` row of the scope. Returns the
 * row's id and `created_at`.
 *
 * @example
 * ```ts
 * import { putConfigToDb } from "./mod.ts";
 * const { id } = await putConfigToDb("app.db", await Deno.readTextFile("sqlbk.toml"), { ageKeyFile: "age.key" });
 * ```
 */
export async function putConfigToDb(
  dbPath: string,
  text: string,
  options: PutConfigOptions = {},
): Promise<{ id: number; createdAt: string; scope: string }> {
  const scope = options.scope ?? DEFAULT_CONFIG_SCOPE;
  parseConfig(text, { origin: options.origin ?? "the config to store" });
  const { identities, source } = await _identities(options);
  if (/^AGE-SECRET-KEY-PQ-/i.test(identities[0])) {
    throw new ConfigError(
      `Invalid age key ${source}: a post-quantum identity ("AGE-SECRET-KEY-PQ-1..."), whose rows restinpieces cannot read; store the config with an X25519 identity ("AGE-SECRET-KEY-1...", from age-keygen without -pq)`,
    );
  }
  let recipient: string;
  try {
    recipient = await identityToRecipient(identities[0]);
  } catch (err) {
    throw new ConfigError(`Invalid age key ${source}: ${errorMessage(err)}`, { cause: err });
  }
  const encrypter = new Encrypter();
  encrypter.addRecipient(recipient);
  const content = await encrypter.encrypt(text);
  const db = openAppDatabase(dbPath, { mode: "readwrite" });
  try {
    if (!_hasTable(db)) {
      if (!options.createSchema) {
        throw new ConfigError(
          `Table "app_config" not found in "${dbPath}": is it the app's database? Pass --create-schema to create it`,
        );
      }
      db.exec(APP_CONFIG_SCHEMA);
    }
    const createdAt = new Date().toISOString().slice(0, 19) + "Z"; // whole seconds, as restinpieces writes
    const rows = db.query(
      `INSERT INTO app_config (scope, content, format, description, created_at) VALUES (?, ?, 'toml', ?, ?)
       RETURNING id`,
      [scope, content, options.description ?? null, createdAt],
    );
    return { id: Number(rows[0].id), createdAt, scope };
  } finally {
    db.close();
  }
}
