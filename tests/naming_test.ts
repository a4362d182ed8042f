import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import {
  type BackupName,
  databaseStem,
  formatBackupName,
  formatTimestamp,
  groupByDatabase,
  latestPerDatabase,
  parseBackupName,
} from "../src/naming.ts";

Deno.test("formatBackupName() writes <stem>-<YYYY-MM-DDTHH-MM-SSZ>-<strategy>.bck.gz in UTC", () => {
  assertEquals(
    formatBackupName("app", new Date("2025-07-01T10:30:00Z"), { strategy: "vacuum" }),
    "app-2025-07-01T10-30-00Z-vacuum.bck.gz",
  );
  assertEquals(formatTimestamp(new Date("2025-07-01T12:30:05+02:00")), "2025-07-01T10-30-05Z");
  assertThrows(() => formatBackupName("", new Date(), { strategy: "online" }));
  assertThrows(() => formatBackupName("a/b", new Date(), { strategy: "online" }));
});

Deno.test("databaseStem() drops only the last extension", () => {
  assertEquals(databaseStem("app.db"), "app");
  assertEquals(databaseStem("/srv/data/app.sqlite3"), "app");
  assertEquals(databaseStem("data.v2.db"), "data.v2");
  assertEquals(databaseStem("plain"), "plain");
  assertEquals(databaseStem("/x/.hidden"), ".hidden");
});

Deno.test("parseBackupName() reads all three grammars", () => {
  const dashed = parseBackupName("my-app-2025-07-01T10-30-00Z-vacuum.bck.gz")!;
  assertEquals(dashed.database, "my-app");
  assertEquals(dashed.time.toISOString(), "2025-07-01T10:30:00.000Z");
  assertEquals(dashed.strategy, "vacuum");
  assertEquals(dashed.grammar, "dashed");
  assert(dashed.compressed);

  const compact = parseBackupName("app-20250701T103000Z-online.bck.gz")!;
  assertEquals([compact.database, compact.strategy, compact.grammar], ["app", "online", "compact"]);
  assertEquals(compact.time.toISOString(), "2025-07-01T10:30:00.000Z");

  const id = parseBackupName("42-20250701T103000Z.db")!;
  assertEquals([id.database, id.strategy, id.compressed, id.grammar], ["42", null, false, "id"]);
  const idgz = parseBackupName("main-20250701T103000Z.bck.gz")!;
  assertEquals([idgz.database, idgz.compressed, idgz.grammar], ["main", true, "id"]);
});

Deno.test("parseBackupName() rejects temp, partial, sidecar, hidden, foreign and impossible names", () => {
  for (
    const name of [
      "app-2025-07-01T10-30-00Z-vacuum.bck.gz.tmp",
      "app-2025-07-01T10-30-00Z-vacuum.bck.gz.partial",
      "app-2025-07-01T10-30-00Z-vacuum.bck.gz.sha256",
      ".sqlbk-app-1234.snapshot",
      ".app-2025-07-01T10-30-00Z-vacuum.bck.gz",
      "notes.txt",
      "app.db",
      "app-2025-13-01T10-30-00Z-vacuum.bck.gz",
      "app-2025-02-30T10-30-00Z-vacuum.bck.gz",
      "app-2025-07-01T25-30-00Z-vacuum.bck.gz",
      "-2025-07-01T10-30-00Z-vacuum.bck.gz",
      "app-20250701T103000Z.db-wal",
    ]
  ) {
    assertEquals(parseBackupName(name), null, name);
  }
});

Deno.test("latestPerDatabase() picks by timestamp, not by sorting names", () => {
  const names = [
    "app-2025-07-01T10-30-00Z-vacuum.bck.gz",
    "app-20250702T000000Z-online.bck.gz", // newer, other grammar: sorts before the dashed name
    "app-2025-07-01T23-59-59Z-online.bck.gz",
    "app-2099-01-01T00-00-00Z-online.bck.gz.tmp",
    "auth-2025-06-01T00-00-00Z-online.bck.gz",
    "auth-2025-06-02T00-00-00Z-online.bck.gz.sha256",
    "README.md",
  ];
  const latest = latestPerDatabase(names);
  assertEquals([...latest.keys()].sort(), ["app", "auth"]);
  assertEquals(latest.get("app")!.name, "app-20250702T000000Z-online.bck.gz");
  assertEquals(latest.get("auth")!.name, "auth-2025-06-01T00-00-00Z-online.bck.gz");
  assertEquals(groupByDatabase(names).get("app")!.map((b) => b.name), [
    "app-2025-07-01T10-30-00Z-vacuum.bck.gz",
    "app-2025-07-01T23-59-59Z-online.bck.gz",
    "app-20250702T000000Z-online.bck.gz",
  ]);
});

Deno.test("the name grammars read .bck.zst as zstd and .bck.gz as gzip, and only those", () => {
  assertEquals(
    formatBackupName("app", new Date("2025-07-01T10:30:00Z"), { strategy: "online", codec: "zstd" }),
    "app-2025-07-01T10-30-00Z-online.bck.zst",
  );
  const cases: [string, string | null, BackupName["grammar"] | null][] = [
    ["app-2025-07-01T10-30-00Z-online.bck.zst", "zstd", "dashed"],
    ["app-20250701T103000Z-online.bck.zst", "zstd", "compact"],
    ["app-20250701T103000Z.bck.zst", "zstd", "id"],
    ["app-20250701T103000Z.bck.gz", "gzip", "id"],
    ["app-20250701T103000Z.db", null, "id"],
    ["app-2025-07-01T10-30-00Z-online.bck.zstd", null, null],
    ["app-2025-07-01T10-30-00Z-online.bck.zst.tmp", null, null],
    ["app-2025-07-01T10-30-00Z-online.bck.zst.sha256", null, null],
    ["app-2025-07-01T10-30-00Z-online.bck.zst.partial", null, null],
  ];
  for (const [name, codec, grammar] of cases) {
    const parsed = parseBackupName(name);
    assertEquals(parsed?.grammar ?? null, grammar, name);
    if (parsed) assertEquals([parsed.codec, parsed.compressed], [codec, codec !== null], name);
  }
  // Newest by time, whatever the codec.
  const latest = latestPerDatabase([
    "app-2025-07-01T10-30-00Z-online.bck.gz",
    "app-2025-07-01T10-29-59Z-online.bck.zst",
  ]);
  assertEquals(latest.get("app")?.name, "app-2025-07-01T10-30-00Z-online.bck.gz");
});
