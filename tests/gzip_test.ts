import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { gunzipFile, gzipFile, sha256File } from "../src/gzip.ts";
import { run, tempDir } from "./support/db.ts";

async function compress(input: string, output: string, options: Parameters<typeof gzipFile>[2] = {}) {
  const file = await Deno.open(output, { write: true, createNew: true });
  try {
    return await gzipFile(input, file, options);
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
