/**
 * Review 2, section 2: errors that were raw OS text, doubled or misleading are one line
 * naming the path, with exit 2 for configuration (a bad library path, a file where a
 * directory goes, an unrunnable SQLBK_SSH, an unreadable source) and a max_duration
 * message that says what happened.
 */

import { assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { listDir, makeDatabase, sqlbk, tempDir } from "./support/db.ts";
import { unprivileged } from "./support/nobody.ts";

Deno.test("a SQLBK_SQLITE_LIB that does not load is one line, exit 2, for backup and verify", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 10 });
  const env = { SQLBK_SQLITE_LIB: dir.join("nonexistent.so") };
  for (const args of [["backup", "app.db", "-d", "b"], ["verify", "x.bck.gz", "y.bck.gz"]]) {
    const out = await sqlbk(args, { cwd: dir.path, env });
    assertEquals(out.code, 2, out.stderr);
    assertEquals(
      out.stderr,
      `error: Cannot load SQLBK_SQLITE_LIB="${env.SQLBK_SQLITE_LIB}": ${env.SQLBK_SQLITE_LIB}: cannot open shared ` +
        `object file: No such file or directory (point it at libsqlite3, or unset it to use the system's)\n`,
    );
  }
  assertEquals((await listDir(dir.path)).includes("b"), false); // nothing ran
});

Deno.test("pull --to a file, or below one, is exit 2: it is a file, not a directory", async () => {
  await using dir = await tempDir();
  const file = dir.join("file");
  await Deno.writeTextFile(file, "x");
  for (
    const [to, why] of [[file, "it is a file"], [`${file}/sub`, "a part of the path is a file"]]
  ) {
    const out = await sqlbk(["pull", "backup@127.0.0.1:/srv/backups", "--to", to]);
    assertEquals(out.code, 2, out.stderr);
    assertEquals(out.stderr, `error: Cannot pull into "${to}": ${why}, not a directory\n`);
  }
  assertEquals(await Deno.readTextFile(file), "x");
});

Deno.test("a SQLBK_SSH that is not an executable file says so, exit 2, without blaming Deno's --allow-run", async () => {
  await using dir = await tempDir();
  const notSsh = dir.join("ssh.txt");
  await Deno.writeTextFile(notSsh, "not a program\n");
  const out = await sqlbk(["pull", "backup@127.0.0.1:/srv/backups", "--to", dir.join("p")], {
    env: { SQLBK_SSH: notSsh },
  });
  assertEquals(out.code, 2, out.stderr);
  assertEquals(
    out.stderr,
    `error: Cannot run the OpenSSH client "${notSsh}": permission denied by the system: it is not an executable ` +
      `file this user may run (point SQLBK_SSH at the ssh program, e.g. /usr/bin/ssh, or unset it)\n`,
  );
});

Deno.test("max_duration on a WAL source that no write restarted says the copy was only slow", async () => {
  await using dir = await tempDir();
  await makeDatabase(dir.join("app.db"), { rows: 2_000, journal: "wal" });
  const out = await sqlbk(
    ["backup", "app.db", "-d", "b", "--max-duration", "1ms", "--pages-per-step", "1", "--sleep-interval", "10ms"],
    { cwd: dir.path },
  );
  assertEquals(out.code, 1, out.stderr);
  assertStringIncludes(
    out.stderr,
    `did not finish within max_duration 1ms (0 restarts: no write restarted the copy, it simply took longer than ` +
      `max_duration; raise max_duration, or copy faster: raise pages_per_step or lower sleep_interval)`,
  );
  assertEquals(/switch it to WAL|written to constantly/.test(out.stderr), false, out.stderr);
});

Deno.test("a source file this user cannot read is exit 2, cannot read it, like an unreadable directory", async () => {
  await using dir = await tempDir();
  await using user = await unprivileged();
  await Deno.chmod(dir.path, 0o755);
  await makeDatabase(dir.join("unread.db"), { rows: 10, journal: "delete" });
  await Deno.chmod(dir.join("unread.db"), 0o000);
  await Deno.mkdir(dir.join("b"), { mode: 0o777 });
  await Deno.chmod(dir.join("b"), 0o777);
  const out = await user.sqlbk(["backup", "unread.db", "-d", "b"], { cwd: dir.path });
  assertEquals(out.code, 2, out.stderr);
  assertMatch(
    out.stderr,
    /^error: .*Invalid "source_path" "unread\.db": cannot read it \(SQLite: unable to open database file\); make it readable for this user \(for a WAL database also its -wal and -shm files\), or run as the database's owner\n$/,
  );
  assertEquals(await listDir(dir.join("b")), []);
});

Deno.test("a missing identity file (-i, or identity_file in [pull]) is exit 2 naming it, before ssh starts", async () => {
  await using dir = await tempDir();
  // A stand-in ssh that only records that it ran: it must never run.
  const ran = dir.join("ssh-ran");
  const ssh = dir.join("ssh");
  await Deno.writeTextFile(ssh, `#!/bin/sh\ntouch ${JSON.stringify(ran)}\nexit 255\n`);
  await Deno.chmod(ssh, 0o755);
  const key = dir.join("nokey");
  const target = "backup@127.0.0.1:/srv/backups";
  const line = (where: string) =>
    `error: Invalid ${where}: identity file "${key}" does not exist (give the path of the private key ssh should use)\n`;
  for (
    const args of [
      ["pull", target, "--to", dir.join("p"), "-i", key],
      ["list", target, "-i", key],
      ["status", target, "-i", key],
    ]
  ) {
    const out = await sqlbk(args, { env: { SQLBK_SSH: ssh } });
    assertEquals([out.code, out.stderr], [2, line("--identity")], args[0]);
  }
  const config = dir.join("pull.toml");
  await Deno.writeTextFile(config, `[pull]\nhost = "127.0.0.1"\nremote_dir = "/srv"\nidentity_file = "${key}"\n`);
  const fromConfig = await sqlbk(["pull", "-c", config, "--to", dir.join("p")], { env: { SQLBK_SSH: ssh } });
  assertEquals([fromConfig.code, fromConfig.stderr], [2, line(`"identity_file" in [pull]`)]);
  assertEquals(await listDir(dir.path), ["pull.toml", "ssh"]); // no ssh-ran, no --to directory
});
