/**
 * A writer in another process (python3 with its own SQLite): commits one small insert
 * every few milliseconds until stopped, then reports how many commits it made and how
 * long each took. Used by tests (writes during a backup) and benchmarks (writer latency).
 *
 * @module
 */

const _SCRIPT = `
import json, os, sqlite3, sys, time
path, table, interval, stop = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
db = sqlite3.connect(path, timeout=30, isolation_level=None)
db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, at REAL, body TEXT)")
lat = []
slow = []
errors = 0
print("ready", flush=True)
while not os.path.exists(stop):
    t0 = time.perf_counter()
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"INSERT INTO {table} (at, body) VALUES (?, ?)", (time.time(), "x" * 200))
        db.execute("COMMIT")
        ms = (time.perf_counter() - t0) * 1000
        lat.append(ms)
        if ms > 50:
            slow.append([round(time.time(), 3), round(ms, 1)])
    except sqlite3.OperationalError:
        errors += 1
        try:
            db.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass
    time.sleep(interval / 1000)
lat.sort()
def pct(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
print(json.dumps({"commits": len(lat), "errors": errors, "p50": pct(0.5), "p99": pct(0.99), "max": lat[-1] if lat else 0, "slow": slow}), flush=True)
`;

/** What the writer measured. */
export interface WriterStats {
  /** Commits made. */
  commits: number;
  /** Commits that failed (SQLITE_BUSY after the 30 s timeout). */
  errors: number;
  /** Median commit latency in ms. */
  p50: number;
  /** 99th percentile commit latency in ms. */
  p99: number;
  /** Slowest commit in ms. */
  max: number;
  /** Commits slower than 50 ms: [unix time in s, ms]. */
  slow: [number, number][];
}

/** A running writer. */
export interface Writer {
  /** Stops the writer and returns its statistics. */
  stop(): Promise<WriterStats>;
}

/**
 * A python3 script started with `args`, once it has printed "ready"; `stop()` creates
 * `stopFile` (the script's cue to finish) and returns the last line it printed.
 */
export async function startReadyScript(
  script: string,
  args: string[],
  stopFile: string,
): Promise<{ pid: number; stop(): Promise<string> }> {
  const child = new Deno.Command("python3", {
    args: ["-c", script, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!buffer.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The python3 script exited before it was ready");
    buffer += value;
  }
  buffer = buffer.slice(buffer.indexOf("ready\n") + 6);
  return {
    pid: child.pid,
    async stop() {
      await Deno.writeTextFile(stopFile, "");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
      }
      await child.status;
      await Deno.remove(stopFile).catch(() => {});
      return buffer.trim().split("\n").pop()!;
    },
  };
}

/**
 * Starts a writer on `dbPath` committing to `table` every `intervalMs`; resolves once it
 * has opened the database.
 */
export async function startWriter(
  dbPath: string,
  options: { table?: string; intervalMs?: number } = {},
): Promise<Writer> {
  const stopFile = `${dbPath}.stop-${crypto.randomUUID().slice(0, 8)}`;
  const script = await startReadyScript(
    _SCRIPT,
    [dbPath, options.table ?? "writer_log", String(options.intervalMs ?? 2), stopFile],
    stopFile,
  );
  return { stop: async () => JSON.parse(await script.stop()) };
}
