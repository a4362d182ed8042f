import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { explainSshFailure, SshLog } from "../src/pull/ssh_log.ts";
import { ConfigError } from "../src/errors.ts";
import { SshError } from "../src/pull/ssh_error.ts";
import { run, tempDir } from "./support/db.ts";
import { keygen, startSshd } from "./support/sshd.ts";

const CTX = { where: '"127.0.0.1"', label: "me@127.0.0.1", timeoutMs: 5000 };

/** Runs the real ssh with `args` and feeds its stderr to an SshLog, in pieces, as a pipe delivers it. */
async function sshLog(args: string[]): Promise<{ log: SshLog; code: number; warnings: string[] }> {
  const out = await run("ssh", ["-v", "-F", "/dev/null", "-o", "BatchMode=yes", ...args, "true"]);
  const warnings: string[] = [];
  const log = new SshLog((w) => warnings.push(w));
  for (let i = 0; i < out.stderr.length; i += 7) log.push(out.stderr.slice(i, i + 7));
  log.end();
  return { log, code: out.code, warnings };
}

function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("explainSshFailure() reads the real ssh's refused, unknown host name and bad option failures", async () => {
  let r = await sshLog(["-p", String(closedPort()), "127.0.0.1"]);
  assertEquals(r.code, 255);
  let err = explainSshFailure(r.log, r.code, CTX);
  assert(err instanceof SshError && err.kind === "refused" && err.retryable, err.message);

  r = await sshLog(["no-such-host.invalid"]);
  err = explainSshFailure(r.log, r.code, CTX);
  assert(err instanceof SshError && err.kind === "unknown-host" && !err.retryable, err.message);
  assertStringIncludes(err.message, '"no-such-host.invalid"');

  r = await sshLog(["-o", "NoSuchOption=1", "127.0.0.1"]);
  err = explainSshFailure(r.log, r.code, CTX);
  assert(err instanceof ConfigError, err.message);
  assertStringIncludes(err.message, "nosuchoption");
});

Deno.test("SshLog gathers the host key fingerprint, the keys offered and the cipher from ssh -v", async () => {
  await using s = await startSshd();
  await using dir = await tempDir();
  const stranger = await keygen(dir.join("stranger"));
  const fp = (await run("ssh-keygen", ["-lf", `${s.dir}/ssh_host_key.pub`])).stdout.split(" ")[1];
  const common = ["-p", String(s.port), "-o", "IdentityAgent=none"];
  const r = await sshLog([...common, "-o", `UserKnownHostsFile=${s.knownHosts}`, "-i", stranger, "127.0.0.1"]);
  assertEquals(r.log.hostKey, { type: "ssh-ed25519", fingerprint: fp });
  assertEquals(r.log.offered, [stranger]);
  assertEquals(r.log.authenticating?.where, `127.0.0.1:${s.port}`);
  assert(r.log.cipher !== "", "a cipher was negotiated");
  const err = explainSshFailure(r.log, r.code, CTX);
  assert(err instanceof SshError && err.kind === "auth" && !err.retryable, err.message);
  assertStringIncludes(err.message, `tried: ${stranger}`);

  // accept-new into a new file: the warning says what was recorded, with the fingerprint.
  const ok = await sshLog([
    ...common,
    "-i",
    s.clientKey,
    "-o",
    `UserKnownHostsFile=${dir.join("kh")}`,
    "-o",
    "StrictHostKeyChecking=accept-new",
    "127.0.0.1",
  ]);
  assertEquals(ok.code, 0);
  assert(ok.log.authenticated);
  assertEquals(ok.warnings.length, 1, ok.warnings.join("\n"));
  assertStringIncludes(ok.warnings[0], "Permanently added");
  assertStringIncludes(ok.warnings[0], fp);
});
