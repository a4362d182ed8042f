import { assertEquals, assertRejects } from "./support/assert.ts";
import { listDir, makeDatabase, tempDir } from "./support/db.ts";
import { basename } from "node:path";
import { publishArchive } from "../src/archive.ts";
import { sidecarName } from "../src/naming.ts";

Deno.test("publishArchive() waits for its gate: a rejected gate publishes nothing, a resolved one publishes", async () => {
  await using dir = await tempDir();
  const snapshot = dir.join(".sqlbk-app-1.snapshot");
  await makeDatabase(snapshot, { journal: "delete", rows: 2000 });
  for (const codec of ["gz", "zst"]) {
    const final = dir.join(`app-2025-07-01T10-30-00Z-online.bck.${codec}`);
    // The gate rejects 300 ms in (the archive is written by then): nothing may be published.
    let release!: (value: unknown) => void;
    let fail!: (err: Error) => void;
    const gate = new Promise((resolve, reject) => [release, fail] = [resolve, reject]);
    const publishing = publishArchive(snapshot, final, { gate });
    await new Promise((r) => setTimeout(r, 300));
    fail(new Error("the snapshot failed its check"));
    await assertRejects(() => publishing, Error, "the snapshot failed its check");
    assertEquals(await listDir(dir.path), [".sqlbk-app-1.snapshot"], codec);

    const ok = publishArchive(snapshot, final, { gate: new Promise((r) => (release = r)) });
    release(true);
    assertEquals((await ok).path, final);
    const name = basename(final);
    assertEquals((await listDir(dir.path)).sort(), [".sqlbk-app-1.snapshot", sidecarName(name), name].sort(), codec);
    await Deno.remove(final);
    await Deno.remove(dir.join(sidecarName(name)));
  }
});
