/**
 * Issue 10, point 10: a full disk on the pull side is one error naming the file that could
 * not be written (the download, or the verification copy), and nothing is published; on
 * the server, a backup's error is SQLite's own for the connection that failed (never "not
 * an error"). A pull or verify whose decompressed copy would leave less than the free-space
 * margin stops before writing it (issue 10, point 4). Both write into a small tmpfs
 * (mounting needs root, as the CI runs).
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { DENO_DIR, listDir, run, sqlbk, sqlite3, tempDir } from "./support/db.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";
import { runBackup } from "../src/job.ts";
import { diskFullError, isDiskFull } from "../src/fs.ts";

Deno.test("sqlbk pull into a full file system names the download or the verification copy it could not write", async () => {
  const isRoot = (await run("id", ["-u"])).stdout.trim() === "0";
  assert(isRoot, "this test mounts a tmpfs and needs root (as CI runs)");
  await using s = await startSshd();
  await using dir = await tempDir();
  const src = dir.join("src.db");
  // Random rows: the archive itself is bigger than the small file system.
  await sqlite3(src, "CREATE TABLE r (b BLOB); INSERT INTO r SELECT randomblob(1000) FROM generate_series(1, 600);");
  const big = await runBackup({ sourcePath: src, backupDir: join(dir.path, "big") });
  // Zeros: a tiny archive of a database that does not fit.
  const zsrc = dir.join("zeros.db");
  await sqlite3(zsrc, "CREATE TABLE z (b BLOB); INSERT INTO z SELECT zeroblob(1000) FROM generate_series(1, 3000);");
  const small = await runBackup({ sourcePath: zsrc, backupDir: join(dir.path, "small") });

  const env = { HOME: dir.path, SSH_AUTH_SOCK: "", DENO_DIR };
  const local = dir.join("full");
  await Deno.mkdir(local);
  const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", local]);
  assertEquals(mounted.code, 0, mounted.stderr);
  try {
    assert(big.bytes > 300 * 1024 && small.bytes < 100 * 1024, `${big.bytes} ${small.bytes}`);
    for (
      const [backup, pattern] of [
        // An archive larger than the free space is refused before a byte is downloaded.
        [
          big,
          /^error: Cannot download "src-\S+\.bck\.gz" \(\d+(\.\d)? KiB to go\) into ".*full": it would leave less than 12\.8 KiB free there \(\d+(\.\d)? KiB free; sqlbk keeps the smaller of 256 MiB and 5% of the file system free\): free some space there$/m,
        ],
        // The decompression stops before the disk is full: the free-space margin (5% of 256 KiB).
        [
          small,
          /^error: Cannot decompress "zeros-\S+\.bck\.gz" into ".*full\/\.sqlbk-verify-[0-9a-f]{8}\.db": decompressing it would leave less than 12\.8 KiB free in ".*full" \(\d+(\.\d)? KiB free; decompression keeps the smaller of 256 MiB and 5% of the file system free\): free some space there$/m,
        ],
      ] as const
    ) {
      await Deno.copyFile(backup.path, join(s.remoteDir, backup.file));
      const out = await sqlbk(pullArgs(s, local, "--db", backup.database), { env });
      assertEquals(out.code, 1, out.stderr);
      assertMatch(out.stderr, pattern);
      assertEquals(out.stderr.split("\n").filter((l) => l.startsWith("error:")).length, 1, out.stderr);
      assertEquals((await listDir(local)).filter((n) => n.endsWith(".bck.gz")), [], "nothing published");
      await Deno.remove(join(s.remoteDir, backup.file));
      // A download cut short stays as .partial to be resumed once there is room; clear it for the next case.
      for (const n of await listDir(local)) if (n.includes(".partial")) await Deno.remove(join(local, n));
    }
    // verify of an archive in that file system: the same rule, exit 1, no temp file left.
    await Deno.copyFile(small.path, join(local, small.file));
    const verified = await sqlbk(["verify", join(local, small.file)], { env });
    assertEquals(verified.code, 1, verified.stderr);
    assertMatch(
      verified.stderr,
      /^error: Cannot decompress ".*full\/zeros-\S+\.bck\.gz" into .*would leave less than 12\.8 KiB free/,
    );
    assertEquals((await listDir(local)).filter((n) => n.startsWith(".sqlbk-verify-")), []);
    await Deno.remove(join(local, small.file));
    // The mapping itself, on a real ENOSPC.
    let caught: unknown = null;
    try {
      await Deno.writeFile(join(local, "fill"), new Uint8Array(512 * 1024));
    } catch (err) {
      caught = err;
    }
    assert(caught !== null && isDiskFull(caught), String(caught));
    assert(!isDiskFull(new Deno.errors.NotFound("gone")));
    assertMatch(
      diskFullError(caught, "/srv/p/a.partial").message,
      /^Cannot write "\/srv\/p\/a\.partial": no space left/,
    );
  } finally {
    await run("umount", [local]);
  }
});

Deno.test("sqlbk backup into a full file system fails with the failing connection's own SQLITE_FULL text", async () => {
  const isRoot = (await run("id", ["-u"])).stdout.trim() === "0";
  assert(isRoot, "this test mounts a tmpfs and needs root (as CI runs)");
  await using dir = await tempDir();
  const src = dir.join("src.db");
  await sqlite3(
    src,
    "PRAGMA journal_mode=WAL; CREATE TABLE r (b BLOB); INSERT INTO r SELECT randomblob(1000) FROM generate_series(1, 2000);",
  );
  const backups = dir.join("b");
  await Deno.mkdir(backups);
  const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", backups]);
  assertEquals(mounted.code, 0, mounted.stderr);
  try {
    for (const strategy of ["online", "vacuum"]) {
      const out = await sqlbk(["backup", src, "-d", backups, "-s", strategy, "-q"]);
      assertEquals(out.code, 1, out.stderr);
      assertMatch(out.stderr, /^error: .*database or disk is full \(SQLITE_FULL\)\n$/);
      assert(!out.stderr.includes("not an error"), out.stderr);
      assertEquals(await listDir(backups), [".sqlbk.lock"], "nothing left but the lock");
    }
  } finally {
    await run("umount", [backups]);
  }
  assertEquals(await sqlite3(src, "SELECT count(*) FROM r;"), "2000");
});
