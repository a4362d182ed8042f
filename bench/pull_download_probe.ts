/**
 * Where a pull's time goes: the raw parallel SFTP download alone (no hashing, gunzip or
 * integrity check) over the pipes of `ssh -s host sftp`, per cipher, of 256 MiB of random
 * bytes from a private sshd on loopback, beside OpenSSH `sftp` on the same file. Compare with `bench/pull_bench.ts`,
 * which times the whole pull with verification.
 *
 *   deno run -A bench/pull_download_probe.ts [--mib 256]
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { connectSftp } from "../src/pull/transport.ts";
import { downloadRange } from "../src/pull/download.ts";
import { run } from "../tests/support/db.ts";
import { opensshClientArgs, sshdConnectOptions, startSshd } from "../tests/support/sshd.ts";

const { values } = parseArgs({ args: Deno.args, options: { mib: { type: "string", default: "256" } } });
const size = Number(values.mib) * 1024 * 1024;
const work = await Deno.makeTempDir({ prefix: "sqlbk-probe-" });
await using sshd = await startSshd();
try {
  const remote = join(sshd.remoteDir, "blob.bin");
  await run("sh", ["-c", `head -c ${size} /dev/urandom > '${remote}'`]);
  const local = join(work, "blob.bin");
  const mibps = (ms: number) => `${(size / 1048576 / (ms / 1000)).toFixed(0)} MiB/s`;
  const ciphers = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"];
  for (const cipher of ciphers) {
    await using session = await connectSftp({ ...sshdConnectOptions(sshd), sshOptions: [`Ciphers=${cipher}`] });
    const t0 = performance.now();
    await downloadRange(session, remote, { localPath: local, size });
    const ms = performance.now() - t0;
    console.log(
      `sqlbk download only, ${session.cipher.padEnd(30)} ${(ms / 1000).toFixed(2)} s  ${mibps(ms)}`,
    );
    await Deno.remove(local);
  }
  const batch = join(work, "batch");
  await Deno.writeTextFile(batch, `get ${remote} ${local}\n`);
  const t0 = performance.now();
  const out = await run("sftp", [
    "-q",
    ...opensshClientArgs(sshd),
    "-P",
    String(sshd.port),
    "-b",
    batch,
    `${sshd.user}@127.0.0.1`,
  ], { env: { SSH_AUTH_SOCK: "" } });
  const ms = performance.now() - t0;
  if (out.code !== 0) throw new Error(`sftp failed: ${out.stderr}`);
  console.log(`OpenSSH sftp get (whole command)                 ${(ms / 1000).toFixed(2)} s  ${mibps(ms)}`);
} finally {
  await Deno.remove(work, { recursive: true });
}
