import { assert, assertEquals, assertMatch, assertStringIncludes } from "./support/assert.ts";
import { join } from "node:path";
import { clientEnv, describe, jsonLines, listDir, run, sqlbk, tempDir } from "./support/db.ts";
import { flipBytes, placeBackup } from "./support/backups.ts";
import { makeDatabase } from "./support/db.ts";
import { pullArgs, startSshd } from "./support/sshd.ts";
import { runBackup } from "../src/job.ts";
import { latestPerDatabase, parseBackupName, sidecarName, sidecarNames } from "../src/naming.ts";
import { chooseLatest } from "../src/pull/pull.ts";

const ZST = "app-2025-03-01T00-00-00Z-online.bck.zst";
Deno.test("sqlbk backup --compression zstd publishes a .bck.zst that the zstd tool reads, with its sidecar", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 500 });
  const out = await sqlbk(["backup", source, "-d", dir.join("bk"), "--compression", "zstd", "--json"]);
  assertEquals(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  assertMatch(result.file, /^app-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-online\.bck\.zst$/);
  assertEquals(parseBackupName(result.file)?.codec, "zstd");
  // The zstd tool tests and decompresses it; sha256sum agrees with the sidecar.
  assertEquals((await run("zstd", ["-t", "-q", result.path])).code, 0);
  const restored = dir.join("restored.db");
  assertEquals((await run("sh", ["-c", `zstd -dc '${result.path}' > '${restored}'`])).code, 0);
  assertEquals((await describe(restored)).counts.items, 500);
  assertEquals((await run("sha256sum", ["-c", sidecarName(result.file)], { cwd: dir.join("bk") })).code, 0);
  assertEquals(
    (await listDir(dir.join("bk"))).filter((n) => n !== ".sqlbk.lock").sort(),
    [
      sidecarName(result.file),
      result.file,
    ].sort(),
  );

  // The same from a config file; a level out of zstd's range, or an unknown codec, is exit 2.
  const cfg = dir.join("sqlbk.toml");
  await Deno.writeTextFile(cfg, `source_path = "${source}"\nbackup_dir = "${dir.join("bk2")}"\ncompression = "zstd"\n`);
  const fromConfig = await sqlbk(["backup", "--config", cfg, "--json"]);
  assertEquals(fromConfig.code, 0, fromConfig.stderr);
  assertMatch(JSON.parse(fromConfig.stdout).file, /\.bck\.zst$/);
  const badLevel = await sqlbk(["backup", source, "--compression", "zstd", "--compression-level", "20"]);
  assertEquals(badLevel.code, 2);
  assertStringIncludes(badLevel.stderr, "compression_level");
  const gzipLevel = await sqlbk(["backup", source, "--compression-level", "12"]);
  assertEquals(gzipLevel.code, 2);
  assertStringIncludes(gzipLevel.stderr, "1 to 9 for gzip");
  const badCodec = await sqlbk(["backup", source, "--compression", "brotli"]);
  assertEquals(badCodec.code, 2);
  assertStringIncludes(badCodec.stderr, `"brotli"`);
});

Deno.test("retention and the newest backup go by time, not codec, across gzip and zstd backups", async () => {
  await using dir = await tempDir();
  const source = dir.join("app.db");
  await makeDatabase(source, { rows: 50 });
  const backupDir = dir.join("bk");
  const codecs = ["zstd", "gzip", "zstd", "gzip"] as const;
  const files: string[] = [];
  for (const [i, compression] of codecs.entries()) {
    const r = await runBackup({ sourcePath: source, backupDir, compression, keepLast: 3 }, {
      startTime: new Date(Date.UTC(2025, 6, 1, 10, i)),
    });
    files.push(r.file);
  }
  // The oldest (a zstd backup) went, with its sidecar; the rest stay, both codecs.
  const left = (await listDir(backupDir)).filter((n) => n !== ".sqlbk.lock").sort();
  assertEquals(left, files.slice(1).flatMap((f) => [f, sidecarName(f)]).sort());
  // The newest is chosen by the time in the name, whichever codec sorts last.
  const names = ["app-2025-07-01T10-02-00Z-online.bck.zst", "app-2025-07-01T10-03-00Z-online.bck.gz"];
  assertEquals(latestPerDatabase(names).get("app")?.name, names[1]);
  assertEquals(latestPerDatabase(names.slice(0, 1)).get("app")?.codec, "zstd");
  const entries = [
    { name: "app-2025-07-01T10-03-00Z-online.bck.gz", size: 1, mtime: 0, isFile: true },
    { name: "app-2025-07-01T10-04-00Z-online.bck.zst", size: 1, mtime: 0, isFile: true },
    { name: "app-20250701T100500Z-online.bck.zst", size: 1, mtime: 0, isFile: true },
  ];
  assertEquals(chooseLatest(entries).get("app")?.name, "app-20250701T100500Z-online.bck.zst");
  assertEquals(chooseLatest(entries.slice(0, 2)).get("app")?.name, "app-2025-07-01T10-04-00Z-online.bck.zst");
});

Deno.test("sqlbk verify, restore and list read zstd archives; --check quick says so", async () => {
  await using dir = await tempDir();
  const backup = await placeBackup(dir.path, ZST, { rows: 40, compression: "zstd" });
  let out = await sqlbk(["verify", backup, "--json"]);
  assertEquals(out.code, 0, out.stderr);
  const row = JSON.parse(out.stdout);
  assertEquals([row.ok, row.codec, row.check, row.checksumVerified], [true, "zstd", "full", true]);
  assert(typeof row.checkMs === "number" && row.checkMs >= 0, out.stdout);

  out = await sqlbk(["verify", backup, "--check", "quick", "--jobs", "1"]);
  assertEquals(out.code, 0, out.stderr);
  assertMatch(out.stdout, /check=quick \(\d+ ms\)\n$/);
  assertStringIncludes(out.stderr, "quick check only");
  out = await sqlbk(["verify", backup, "--check", "fast"]);
  assertEquals(out.code, 2);
  assertStringIncludes(out.stderr, `--check "fast"`);
  out = await sqlbk(["verify", backup, "--jobs", "0"]);
  assertEquals(out.code, 2);

  const dest = dir.join("app.db");
  out = await sqlbk(["restore", backup, "--to", dest, "--json"]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(JSON.parse(out.stdout).check, "full");
  assertEquals((await describe(dest)).counts.items, 40);
  out = await sqlbk(["restore", backup, "--to", dest, "--force", "--check", "quick"]);
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stderr, "(quick check)");

  out = await sqlbk(["list", dir.path, "--json"]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(jsonLines(out.stdout).map((r) => [r.file, r.codec, r.checksum, r.latest]), [[ZST, "zstd", true, true]]);
});

Deno.test("corrupted zstd archives fail verify and restore with exit 3: flipped bytes, truncation, appended garbage", async () => {
  await using dir = await tempDir();
  const good = await placeBackup(dir.path, ZST, { rows: 3000, compression: "zstd", sidecar: false });
  const bytes = await Deno.readFile(good);
  const cases: [string, (path: string) => Promise<void>][] = [
    ["flipped", (p) => flipBytes(p, 0.5, 8)],
    ["truncated", (p) => Deno.truncate(p, Math.floor(bytes.length * 0.7))],
    ["garbage", async (p) => {
      const f = await Deno.open(p, { append: true });
      await f.write(new TextEncoder().encode("appended garbage after the last frame"));
      f.close();
    }],
    ["gzip-inside", async (p) => await Deno.copyFile(await placeBackup(dir.path, "x.bck.gz", { rows: 5 }), p)],
  ];
  for (const [name, damage] of cases) {
    const path = dir.join(`app-2025-04-01T00-00-00Z-${name.replace("-", "_")}.bck.zst`);
    await Deno.writeFile(path, bytes);
    await damage(path);
    const out = await sqlbk(["verify", path]);
    assertEquals(out.code, 3, `${name}: ${out.stderr}`);
    assertStringIncludes(out.stderr, "failed verification");
    const restore = await sqlbk(["restore", path, "--to", dir.join(`${name}.db`)]);
    assertEquals(restore.code, 3, `${name}: ${restore.stderr}`);
    assert(!(await listDir(dir.path)).includes(`${name}.db`), name);
  }
  assert((await listDir(dir.path)).every((n) => !n.startsWith(".sqlbk-verify") || n === ".sqlbk-verify.lock"));
});

Deno.test("sqlbk pull fetches the newest backup across codecs, verifies a zstd archive and reports the check", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  await placeBackup(s.remoteDir, "app-2025-02-01T00-00-00Z-online.bck.gz", { rows: 10 });
  await placeBackup(s.remoteDir, ZST, { rows: 30, compression: "zstd" });
  await placeBackup(s.remoteDir, "auth-2025-03-01T00-00-00Z-online.bck.gz", { rows: 5 });
  await placeBackup(s.remoteDir, "auth-2025-01-01T00-00-00Z-online.bck.zst", { rows: 5, compression: "zstd" });
  const local = dir.join("pulled");
  let out = await sqlbk(pullArgs(s, local, "--json", "--jobs", "2"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 0, out.stderr);
  const rows = jsonLines(out.stdout);
  assertEquals(rows.map((r) => r.file), [ZST, "auth-2025-03-01T00-00-00Z-online.bck.gz"]);
  for (const r of rows) {
    assertEquals([r.verified, r.skipped, r.check], [true, false, "full"]);
    assert(typeof r.checkMs === "number", JSON.stringify(r));
  }
  assertEquals(await Deno.readFile(join(local, ZST)), await Deno.readFile(join(s.remoteDir, ZST)));

  // --decompress publishes the database from the zstd archive; --check quick says so.
  await Deno.remove(local, { recursive: true });
  out = await sqlbk(pullArgs(s, join(dir.path, "q"), "--db", "app", "--check", "quick", "--decompress"), {
    env: clientEnv(dir.path),
  });
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stderr, "quick check only");
  assertEquals((await describe(join(dir.path, "q", "app-latest.db"))).counts.items, 30);

  // A corrupted zstd archive on the server (sidecar removed, so decompression must catch it): exit 3.
  for (const sidecar of sidecarNames(ZST)) await Deno.remove(join(s.remoteDir, sidecar)).catch(() => {});
  const data = await Deno.readFile(join(s.remoteDir, ZST));
  await Deno.writeFile(join(s.remoteDir, ZST), data.subarray(0, data.length - 9));
  out = await sqlbk(pullArgs(s, dir.join("bad"), "--db", "app"), { env: clientEnv(dir.path) });
  assertEquals(out.code, 3, out.stderr);
  assertStringIncludes(out.stderr, "zstd data is corrupt or truncated");
  assertEquals((await listDir(dir.join("bad"))).filter((n) => !n.startsWith(".")), []);
});
