/**
 * An application in another process (python3 with its own SQLite) writing to its
 * database the way apps do: each commit through a short-lived connection (open, write,
 * close), or every commit through one long-lived connection. It records the sequence
 * number of every commit that succeeded, so a test can check that each is still there.
 *
 * @module
 */

import { startReadyScript } from "./writer.ts";

const _SCRIPT = `
import json, os, random, sqlite3, sys, time
path, writer, mode, stop, seed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
rnd = random.Random(seed)
long_lived = sqlite3.connect(path, timeout=30, isolation_level=None) if mode == "long" else None
committed, errors, seq = [], [], 0
print("ready", flush=True)
while not os.path.exists(stop):
    seq += 1
    try:
        db = long_lived or sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO app_rows (writer, seq, body) VALUES (?, ?, ?)",
                       (writer, seq, os.urandom(rnd.choice([50, 500, 3000])).hex()))
            db.execute("COMMIT")
            committed.append(seq)
            # a reader too: the app reads what it wrote
            db.execute("SELECT count(*) FROM app_rows WHERE writer = ?", (writer,)).fetchone()
        finally:
            if db is not long_lived:
                db.close()
    except sqlite3.Error as e:
        errors.append(f"{type(e).__name__}: {e}")
    # sparse writes: the gaps are when the worker is alone with the database
    time.sleep(rnd.uniform(0.02, 0.6))
if long_lived:
    long_lived.close()
print(json.dumps({"committed": committed, "errors": errors}), flush=True)
`;

/** SQL for the table the app writes. */
export const APP_TABLE = `CREATE TABLE app_rows (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, seq INTEGER NOT NULL,
  body TEXT NOT NULL, UNIQUE (writer, seq));`;

/** What an app writer did. */
export interface AppWriterResult {
  /** Sequence numbers of the commits that succeeded. */
  committed: number[];
  /** SQLite errors the app saw (a sound run has none). */
  errors: string[];
}

/** A running app writer. */
export interface AppWriter {
  /** Stops it and returns what it committed. */
  stop(): Promise<AppWriterResult>;
  /** The process id, for stopping it by PID if a test fails early. */
  pid: number;
}

/**
 * Starts an app writing rows of `writer` into `app_rows` of `dbPath` through short-lived
 * connections (`short`) or one long-lived connection (`long`).
 */
export async function startAppWriter(
  dbPath: string,
  writer: string,
  mode: "short" | "long",
  seed = 1,
): Promise<AppWriter> {
  const stopFile = `${dbPath}.stop-${writer}-${crypto.randomUUID().slice(0, 8)}`;
  const script = await startReadyScript(_SCRIPT, [dbPath, writer, mode, stopFile, String(seed)], stopFile);
  return { pid: script.pid, stop: async () => JSON.parse(await script.stop()) };
}
