import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { join } from "node:path";
import { run, tempDir } from "./support/db.ts";
import { keygen } from "./support/sshd.ts";
import { createGcm, GCM_CIPHERS, gcmBackend } from "../src/pull/ssh/gcm.ts";
import { parsePrivateKey } from "../src/pull/ssh/private_key.ts";
import { fileSigner, verifyHostSignature } from "../src/pull/ssh/keys.ts";
import { SshReader, SshWriter } from "../src/pull/ssh/wire.ts";
import { GunzipError, openGunzip } from "../src/gunzip.ts";

Deno.test("libcrypto is found on this machine (the fast path the pull benchmark measures)", () => {
  assertEquals(gcmBackend(), "libcrypto");
});

Deno.test("AES-GCM packets sealed by one backend open with the other, in sequence; a flipped bit fails", async () => {
  for (const cipher of GCM_CIPHERS) {
    const key = crypto.getRandomValues(new Uint8Array(cipher.startsWith("aes128") ? 16 : 32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    // The nonce counter starts near a 32-bit boundary to check the 64-bit increment.
    iv.set([0, 0, 0, 0xff, 0xff, 0xff, 0xfe], 5);
    for (const [from, to] of [["libcrypto", "webcrypto"], ["webcrypto", "libcrypto"]] as const) {
      const seal = await createGcm(cipher, key, iv, true, from);
      const open = await createGcm(cipher, key, iv, false, to);
      for (let i = 0; i < 4; i++) {
        const len = 16 * (1 + i * 37);
        const packet = new Uint8Array(4 + len);
        new DataView(packet.buffer).setUint32(0, len);
        crypto.getRandomValues(packet.subarray(4));
        const sealed = (await seal.seal(packet, len)).slice();
        assertEquals(sealed.length, 4 + len + 16);
        const out = new Uint8Array(4 + len);
        if (i === 3) {
          sealed[10] ^= 1;
          assertEquals(await open.open(sealed, len, out), false, `${cipher} ${from}->${to}: tampering detected`);
        } else {
          assert(await open.open(sealed, len, out), `${cipher} ${from}->${to} packet ${i}`);
          assertEquals(out, packet);
        }
      }
      seal.dispose();
      open.dispose();
    }
  }
});

Deno.test("SSH wire: mpint encoding follows RFC 4251's examples", () => {
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  assertEquals(hex(new SshWriter().mpint(new Uint8Array()).bytes()), "00000000");
  assertEquals(
    hex(new SshWriter().mpint(new Uint8Array([0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7])).bytes()),
    "0000000809a378f9b2e332a7",
  );
  assertEquals(hex(new SshWriter().mpint(new Uint8Array([0x80])).bytes()), "000000020080");
  assertEquals(hex(new SshWriter().mpint(new Uint8Array([0, 0, 0x7f])).bytes()), "000000017f");
  assertEquals(
    new SshReader(new SshWriter().mpint(new Uint8Array([0x80, 1])).bytes()).mpint(),
    new Uint8Array([0x80, 1]),
  );
  let threw = false;
  try {
    new SshReader(new Uint8Array([0, 0, 0, 9, 1])).view();
  } catch {
    threw = true;
  }
  assert(threw, "a string longer than the message is refused");
});

Deno.test("parsePrivateKey() reads ssh-keygen's keys (OpenSSH and PEM formats) with the public key ssh-keygen derives", async () => {
  await using dir = await tempDir();
  const cases: [string, string, string[]][] = [
    ["ed25519", "ssh-ed25519", ["-t", "ed25519"]],
    ["ecdsa256", "ecdsa-sha2-nistp256", ["-t", "ecdsa", "-b", "256"]],
    ["ecdsa384", "ecdsa-sha2-nistp384", ["-t", "ecdsa", "-b", "384"]],
    ["ecdsa521", "ecdsa-sha2-nistp521", ["-t", "ecdsa", "-b", "521"]],
    ["rsa", "ssh-rsa", ["-t", "rsa", "-b", "2048"]],
    ["rsa-pem", "ssh-rsa", ["-t", "rsa", "-b", "2048", "-m", "PEM"]],
    ["ecdsa-pem", "ecdsa-sha2-nistp256", ["-t", "ecdsa", "-b", "256", "-m", "PEM"]],
  ];
  for (const [name, type, extra] of cases) {
    const path = join(dir.path, name);
    const out = await run("ssh-keygen", ["-q", ...extra, "-N", "", "-C", "t", "-f", path]);
    assertEquals(out.code, 0, out.stderr);
    const key = await parsePrivateKey(await Deno.readFile(path));
    assertEquals(key.type, type, name);
    const pub = (await Deno.readTextFile(`${path}.pub`)).split(" ")[1];
    assertEquals(btoa(String.fromCharCode(...key.publicKey)), pub, `${name}: public key blob`);
    // A signature made with the private key verifies with the public blob.
    const data = crypto.getRandomValues(new Uint8Array(64));
    const signer = fileSigner(key);
    const sig = await signer.sign(data);
    assert(verifyHostSignature(signer.algorithm, key.publicKey, sig, data), `${name}: signature verifies`);
    data[0] ^= 1;
    assert(!verifyHostSignature(signer.algorithm, key.publicKey, sig, data), `${name}: a changed message fails`);
  }
  // An encrypted key needs the passphrase, and opens with it.
  const enc = await keygen(join(dir.path, "enc"), "ed25519", "s3cret");
  const err = await assertRejects(() => parsePrivateKey(Deno.readFileSync(enc)));
  assert((err as { passphrase?: boolean }).passphrase, "flagged as needing a passphrase");
  const opened = await parsePrivateKey(Deno.readFileSync(enc), "s3cret");
  assertEquals(btoa(String.fromCharCode(...opened.publicKey)), (await Deno.readTextFile(`${enc}.pub`)).split(" ")[1]);
});

Deno.test("openGunzip() (libz and node:zlib) restores gzip's output, reads concatenated members, and rejects truncated and corrupt input", async () => {
  await using dir = await tempDir();
  const a = new Uint8Array(3 * 1024 * 1024 + 17);
  for (let off = 0; off < a.length; off += 65536) crypto.getRandomValues(a.subarray(off, off + 65536));
  a.fill(65, 1000, 900_000); // some compressible runs
  const b = new TextEncoder().encode("second member\n".repeat(5000));
  await Deno.writeFile(join(dir.path, "a"), a);
  await Deno.writeFile(join(dir.path, "b"), b);
  await run("sh", ["-c", `cd '${dir.path}' && gzip -k -6 a && gzip -k -1 b && cat a.gz b.gz > ab.gz`]);
  const ab = await Deno.readFile(join(dir.path, "ab.gz"));
  const expected = new Uint8Array(a.length + b.length);
  expected.set(a);
  expected.set(b, a.length);

  const inflate = async (backend: "libz" | "node:zlib", input: Uint8Array, piece: number) => {
    const parts: Uint8Array[] = [];
    const gz = openGunzip((block) => void parts.push(block.slice()), backend);
    try {
      for (let off = 0; off < input.length; off += piece) await gz.push(input.subarray(off, off + piece));
      await gz.end();
    } finally {
      gz.dispose();
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  };
  for (const backend of ["libz", "node:zlib"] as const) {
    for (const piece of [7, 65536, ab.length]) {
      if (piece === 7 && backend === "node:zlib") continue; // too slow a feed for the stream path; libz covers tiny pieces
      assertEquals(await inflate(backend, ab, piece), expected, `${backend}, pieces of ${piece}`);
    }
    const truncated = await assertRejects(() => inflate(backend, ab.subarray(0, ab.length - 100), 65536));
    assert((truncated as { code?: string }).code?.startsWith("Z_"), `${backend}: truncated -> ${truncated}`);
    const corrupt = ab.slice();
    for (let i = 200_000; i < 200_064; i++) corrupt[i] ^= 0x5a;
    const bad = await assertRejects(() => inflate(backend, corrupt, 65536));
    assert((bad as { code?: string }).code?.startsWith("Z_"), `${backend}: corrupt -> ${bad}`);
    const empty = await assertRejects(() => inflate(backend, new Uint8Array(), 65536));
    assert((empty as { code?: string }).code?.startsWith("Z_"), `${backend}: empty -> ${empty}`);
  }
  assert(new GunzipError("Z_DATA_ERROR", "x").code === "Z_DATA_ERROR");
});
