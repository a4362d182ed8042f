import { assert, assertEquals, assertRejects, assertStringIncludes } from "./support/assert.ts";
import { gzipFile } from "../src/codecs/gzip.ts";
import { sha256File } from "../src/hash.ts";
import { openUnzstd, zstdFile } from "../src/codecs/zstd.ts";
import { codecOfName, detectFormat, isCorruptData, openDecompressor } from "../src/codecs/codec.ts";
import { decompressFile, gunzipFile } from "../src/codecs/decompress_file.ts";
import { DecompressError } from "../src/codecs/decompressor.ts";
import { run, tempDir } from "./support/db.ts";
import { makeSoundDatabase } from "./support/corrupt.ts";

/** Compresses `input` into a new file `output` with `codec` (gzipFile by default). */
async function compress(
  input: string,
  output: string,
  options: Parameters<typeof gzipFile>[2] = {},
  codec: typeof gzipFile = gzipFile,
) {
  const file = await Deno.open(output, { write: true, createNew: true });
  try {
    return await codec(input, file, options);
  } finally {
    file.close();
  }
}

const _words = Array.from(
  { length: 3000 },
  () => Math.random().toString(36).slice(2, 4 + Math.floor(Math.random() * 6)),
);

function sample(size: number): Uint8Array {
  // Text-like: random words from a fixed vocabulary, compressible like real data.
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const word = _words[Math.floor(Math.random() * _words.length)] + " ";
    parts.push(word);
    length += word.length;
  }
  return new TextEncoder().encode(parts.join("")).slice(0, size);
}

Deno.test("gzipFile() writes one gzip member that gzip, pigz and DecompressionStream read back exactly", async () => {
  await using dir = await tempDir();
  for (const size of [0, 1, 4096, 65536, 65536 * 3 + 17]) {
    const input = dir.join(`in-${size}`);
    const output = `${input}.gz`;
    const data = sample(size);
    await Deno.writeFile(input, data);
    const result = await compress(input, output, { blockSize: 65536, workers: 2 });
    assertEquals(result.inputBytes, size);
    assertEquals(result.outputBytes, (await Deno.stat(output)).size);
    assertEquals((await run("gzip", ["-t", output])).code, 0, `gzip -t ${size}`);
    assertEquals((await run("pigz", ["-t", output])).code, 0, `pigz -t ${size}`);
    const gunzipped = await new Deno.Command("gzip", { args: ["-dc", output], stdout: "piped" }).output();
    assertEquals(gunzipped.stdout, data, `gzip -dc ${size}`);
    const stream = (await Deno.open(output)).readable.pipeThrough(new DecompressionStream("gzip"));
    assertEquals(new Uint8Array(await new Response(stream).arrayBuffer()), data, `DecompressionStream ${size}`);
    const sha = (await run("sha256sum", [output])).stdout.split(" ")[0];
    assertEquals(result.sha256, sha);
    assertEquals(await sha256File(output), sha);
  }
});

Deno.test("gzipFile() compresses about as well as gzip -6 at its default level", async () => {
  await using dir = await tempDir();
  const input = dir.join("in");
  await Deno.writeFile(input, sample(3 * 1024 * 1024));
  const ours = await compress(input, dir.join("ours.gz"));
  const theirs = await new Deno.Command("gzip", { args: ["-6", "-c", input], stdout: "piped" }).output();
  assert(
    ours.outputBytes <= theirs.stdout.byteLength * 1.05,
    `${ours.outputBytes} vs gzip -6 ${theirs.stdout.byteLength}`,
  );
});

Deno.test("gzipFile() stops at an abort and rejects an invalid level", async () => {
  await using dir = await tempDir();
  const input = dir.join("in");
  await Deno.writeFile(input, sample(1024 * 1024));
  const controller = new AbortController();
  let calls = 0;
  await assertRejects(
    () =>
      compress(input, dir.join("a.gz"), {
        blockSize: 16384,
        signal: controller.signal,
        onProgress: () => {
          if (++calls === 2) controller.abort(new Error("stop here"));
        },
      }),
    Error,
    "stop here",
  );
  await assertRejects(() => compress(input, dir.join("b.gz"), { level: 0 }), RangeError, "1 to 9");
});

Deno.test("gunzipFile() restores the input and rejects truncated and corrupt archives", async () => {
  await using dir = await tempDir();
  const input = dir.join("in");
  const data = sample(300_000);
  await Deno.writeFile(input, data);
  const result = await compress(input, dir.join("in.gz"), { blockSize: 65536 });
  const out = await gunzipFile(dir.join("in.gz"), dir.join("out"));
  assertEquals(out.sha256, result.sha256);
  assertEquals(await Deno.readFile(dir.join("out")), data);

  const gz = await Deno.readFile(dir.join("in.gz"));
  await Deno.writeFile(dir.join("short.gz"), gz.subarray(0, gz.length - 100));
  await assertRejects(() => gunzipFile(dir.join("short.gz"), dir.join("short.out")));
  const flipped = gz.slice();
  for (let i = 1000; i < 1010; i++) flipped[i] ^= 0xff;
  await Deno.writeFile(dir.join("flipped.gz"), flipped);
  await assertRejects(() => gunzipFile(dir.join("flipped.gz"), dir.join("flipped.out")));
});

function zstd(input: string, output: string, options: Parameters<typeof zstdFile>[2] = {}) {
  return compress(input, output, options, zstdFile);
}

Deno.test("zstdFile() writes independent frames that the zstd tool reads back exactly, on every size", async () => {
  await using dir = await tempDir();
  for (const size of [0, 1, 65536, 65536 * 5 + 3]) {
    const input = dir.join(`in-${size}`);
    const output = `${input}.zst`;
    const data = sample(size);
    await Deno.writeFile(input, data);
    const result = await zstd(input, output, { blockSize: 65536, workers: 2 });
    assertEquals(result.inputBytes, size);
    assertEquals(result.outputBytes, (await Deno.stat(output)).size);
    assertEquals((await run("zstd", ["-t", "-q", output])).code, 0, `zstd -t ${size}`);
    const back = await new Deno.Command("zstd", { args: ["-dc", output], stdout: "piped" }).output();
    assertEquals(back.stdout, data, `zstd -dc ${size}`);
    assertEquals(result.sha256, await sha256File(output));
    // One frame per block: `zstd -l` counts them (an empty input is one empty frame).
    const frames = Math.max(1, Math.ceil(size / 65536));
    const listed = await run("zstd", ["-lv", output]);
    assertStringIncludes(listed.stdout, `# Zstandard Frames: ${frames}`);
    // And sqlbk's own reader restores it, with the same hash of the archive.
    const restored = await decompressFile(output, `${input}.out`);
    assertEquals([restored.sha256, restored.outputBytes], [result.sha256, size]);
    assertEquals(await Deno.readFile(`${input}.out`), data);
  }
});

Deno.test("zstdFile() at its default level is smaller than gzip -6 on a database and accepts levels 1 to 19 only", async () => {
  await using dir = await tempDir();
  const input = dir.join("in.db");
  await makeSoundDatabase(input, 30000);
  const ours = await zstd(input, dir.join("ours.zst"));
  const gz = await new Deno.Command("gzip", { args: ["-6", "-c", input], stdout: "piped" }).output();
  assert(ours.outputBytes < gz.stdout.byteLength, `${ours.outputBytes} vs gzip -6 ${gz.stdout.byteLength}`);
  const high = await zstd(input, dir.join("high.zst"), { level: 19, blockSize: 1 << 20 });
  assert(high.outputBytes < ours.outputBytes, `level 19 ${high.outputBytes} vs level 1 ${ours.outputBytes}`);
  await assertRejects(() => zstd(input, dir.join("bad.zst"), { level: 20 }), RangeError, "1 to 19");
  await assertRejects(() => zstd(input, dir.join("bad2.zst"), { level: 0 }), RangeError, "1 to 19");
});

Deno.test("decompressFile() reads zstd tool output, and rejects flipped bytes, truncation and appended garbage", async () => {
  await using dir = await tempDir();
  const input = dir.join("in");
  const data = sample(700_000);
  await Deno.writeFile(input, data);
  // Made by the zstd tool: one frame, with a checksum.
  assertEquals((await run("zstd", ["-q", "-3", input, "-o", dir.join("tool.zst")])).code, 0);
  await decompressFile(dir.join("tool.zst"), dir.join("tool.out"));
  assertEquals(await Deno.readFile(dir.join("tool.out")), data);
  // Ours: several frames.
  await zstd(input, dir.join("in.zst"), { blockSize: 65536 });
  const z = await Deno.readFile(dir.join("in.zst"));
  const cases: [string, Uint8Array][] = [
    [
      "flipped",
      (() => {
        const f = z.slice();
        for (let i = 5000; i < 5010; i++) f[i] ^= 0xff;
        return f;
      })(),
    ],
    ["truncated", z.subarray(0, z.length - 7)],
    ["cut-mid-frame", z.subarray(0, Math.floor(z.length / 2))],
    ["garbage", new Uint8Array([...z, ...new TextEncoder().encode("trailing garbage")])],
    ["extra-zero-bytes", new Uint8Array([...z, 0, 0, 0, 0, 0, 0, 0, 0])],
    ["empty", new Uint8Array(0)],
  ];
  for (const [name, bytes] of cases) {
    await Deno.writeFile(dir.join(`${name}.zst`), bytes);
    const err = await assertRejects(() => decompressFile(dir.join(`${name}.zst`), dir.join(`${name}.out`)));
    assert(isCorruptData(err), `${name}: ${err}`);
    // The zstd tool agrees each one is broken.
    assert((await run("zstd", ["-t", "-q", dir.join(`${name}.zst`)])).code !== 0, `zstd -t accepts ${name}`);
  }
  // Named zstd, holding gzip: refused as corrupt.
  await compress(input, dir.join("in.gz"));
  const mismatch = await assertRejects(() =>
    decompressFile(dir.join("in.gz"), dir.join("mismatch.out"), { expect: "zstd" })
  );
  assert(mismatch instanceof DecompressError, String(mismatch));
  assertStringIncludes(mismatch.message, "the name says zstd but the data is gzip");
});

Deno.test("the zstd reader follows frames across any chunking, skips skippable frames, and streams a frame of any length", async () => {
  await using dir = await tempDir();
  const data = sample(1024 * 1024 + 1234);
  await Deno.writeFile(dir.join("in"), data);
  // One frame from the zstd tool (longer than the reader's 1 MiB output buffer), a
  // skippable frame, then sqlbk's own frames.
  assertEquals((await run("zstd", ["-q", "-19", dir.join("in"), "-o", dir.join("tool.zst")])).code, 0);
  await zstd(dir.join("in"), dir.join("ours.zst"), { blockSize: 100_000 });
  const skippable = new Uint8Array([0x5a, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
  const archive = new Uint8Array([
    ...await Deno.readFile(dir.join("tool.zst")),
    ...skippable,
    ...await Deno.readFile(dir.join("ours.zst")),
  ]);
  const expected = new Uint8Array([...data, ...data]);
  for (
    const [step, wholeFrames] of [1, 7, 65537, archive.length].flatMap((
      n,
    ) => [[n, false] as const, [n, true] as const])
  ) {
    const chunks: Uint8Array[] = [];
    const sink = (block: Uint8Array) => void chunks.push(block.slice());
    const reader = wholeFrames ? openUnzstd(sink, { wholeFrames: true }) : openDecompressor("zstd", sink);
    for (let off = 0; off < archive.length; off += step) await reader.push(archive.slice(off, off + step));
    await reader.end();
    reader.dispose();
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    assertEquals(out.length, expected.length, `step ${step}, whole frames ${wholeFrames}`);
    assert(out.every((b, k) => b === expected[k]), `step ${step}, whole frames ${wholeFrames}: content differs`);
  }
});

Deno.test("the zstd reader reports a frame that never ends as truncated, without buffering it", async () => {
  await using dir = await tempDir();
  // A frame header, then raw blocks that never end (the last-block bit is never set).
  const header = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58]);
  const size = 128 << 10;
  const block = new Uint8Array(3 + size);
  block[0] = (size << 3) & 0xff; // type 0 (raw), not last
  block[1] = (size >> 5) & 0xff;
  block[2] = (size >> 13) & 0xff;
  const file = await Deno.open(dir.join("endless.zst"), { write: true, create: true });
  await file.write(header);
  for (let written = 0; written < 80 << 20; written += block.length) await file.write(block);
  file.close();
  const err = await assertRejects(
    () => decompressFile(dir.join("endless.zst"), dir.join("endless.out")),
    DecompressError,
  );
  assertStringIncludes(err.message, "unexpected end of file inside a zstd frame");
  // A block header above zstd's 128 KiB block limit is refused where it is.
  const big = new Uint8Array([
    ...header,
    ((size + 1) << 3) & 0xff,
    ((size + 1) >> 5) & 0xff,
    ((size + 1) >> 13) & 0xff,
  ]);
  await Deno.writeFile(dir.join("big.zst"), big);
  const bigErr = await assertRejects(() => decompressFile(dir.join("big.zst"), dir.join("big.out")), DecompressError);
  assertStringIncludes(bigErr.message, "above 128 KiB at byte 6");
});

Deno.test("detectFormat() and codecOfName() tell gzip, zstd and SQLite apart", () => {
  assertEquals(detectFormat(new Uint8Array([0x1f, 0x8b, 8, 0])), "gzip");
  assertEquals(detectFormat(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0])), "zstd");
  assertEquals(detectFormat(new TextEncoder().encode("SQLite format 3\0")), "sqlite");
  assertEquals(detectFormat(new Uint8Array([1, 2])), null);
  assertEquals(codecOfName("a-2025-01-01T00-00-00Z-online.bck.zst"), "zstd");
  assertEquals(codecOfName("a-2025-01-01T00-00-00Z-online.bck.gz"), "gzip");
  assertEquals(codecOfName("a-20250101T000000Z.db"), null);
});
