/**
 * Test support for the job queue: rows read back with the system `sqlite3` tool.
 *
 * @module
 */

import { sqlite3 } from "./db.ts";

/** A job_queue row as the sqlite3 tool prints it (JSON mode). */
export interface JobRow {
  id: number;
  job_type: string;
  payload: string;
  payload_extra: string;
  status: string;
  attempts: number;
  max_attempts: number;
  created_at: string;
  updated_at: string;
  scheduled_for: string;
  locked_by: string;
  locked_at: string;
  completed_at: string;
  last_error: string;
  recurrent: number;
  interval: string;
}

/** Every job_queue row, by id, read with the sqlite3 tool. */
export async function jobRows(dbPath: string, where = "1"): Promise<JobRow[]> {
  const out = await sqlite3(dbPath, `.mode json\nSELECT * FROM job_queue WHERE ${where} ORDER BY id;`);
  return out === "" ? [] : JSON.parse(out);
}

/** The queue's timestamp shape. */
export const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** `date` as the queue writes it. */
export function ts(date: Date | number): string {
  return `${new Date(date).toISOString().slice(0, 19)}Z`;
}

/** Now, floored to a whole second, in ms. */
export function wholeSecond(ms = Date.now()): number {
  return Math.floor(ms / 1000) * 1000;
}

/** A running subprocess whose stderr is collected in the background, for waiting on log lines. */
export class Running {
  readonly child: Deno.ChildProcess;
  stderr = "";
  stdout = "";
  readonly #done: Promise<Deno.CommandStatus>;

  constructor(child: Deno.ChildProcess) {
    this.child = child;
    const collect = async (stream: ReadableStream<Uint8Array>, key: "stderr" | "stdout") => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this[key] += decoder.decode(chunk, { stream: true });
    };
    const readers = Promise.all([collect(child.stderr, "stderr"), collect(child.stdout, "stdout")]);
    this.#done = readers.then(() => child.status);
  }

  /** Resolves once stderr matches `pattern`; throws after `timeoutMs` or when the process exits first. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    await until(() => pattern.test(this.stderr), timeoutMs, () => `stderr never matched ${pattern}:\n${this.stderr}`);
  }

  /** Waits for the process to exit (its output fully read). */
  status(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  /** Kills it (if still running) and waits for it. */
  async stop(signal: Deno.Signal = "SIGKILL"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    return await this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Polls `check` every 50 ms until it returns true; throws with `describe()` after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  describe: () => string = () => "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** TOML for a backup of `source` into `backupDir`; `slow` makes an online copy take seconds. */
export function backupToml(source: string, backupDir: string, options: { slow?: boolean } = {}): string {
  return [
    `source_path = ${JSON.stringify(source)}`,
    `backup_dir = ${JSON.stringify(backupDir)}`,
    `strategy = "online"`,
    options.slow ? `pages_per_step = 1\nsleep_interval = "10ms"` : `pages_per_step = 1000\nsleep_interval = "0s"`,
    "",
  ].join("\n");
}
