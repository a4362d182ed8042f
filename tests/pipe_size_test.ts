import { assert, assertEquals } from "./support/assert.ts";
import { growChildPipe, PIPE_BYTES } from "../src/pull/pipe_size.ts";
import { SshProcess } from "../src/pull/ssh_process.ts";

Deno.test("growChildPipe() grows a child's stdout pipe to 1 MiB and the bytes still flow through it intact", async () => {
  const child = new Deno.Command("cat", { stdin: "piped", stdout: "piped", stderr: "null" }).spawn();
  assertEquals(growChildPipe(child.pid, 1), PIPE_BYTES);
  assertEquals(growChildPipe(child.pid, 0), PIPE_BYTES, "its stdin too");
  const data = crypto.getRandomValues(new Uint8Array(65536)).map((b, i) => b ^ i);
  const sent = new Uint8Array(3 * PIPE_BYTES);
  for (let i = 0; i < sent.length; i += data.length) sent.set(data, i);
  const writer = child.stdin.getWriter();
  const writing = writer.write(sent).then(() => writer.close());
  const got = new Uint8Array(await new Response(child.stdout).arrayBuffer());
  await writing;
  await child.status;
  assertEquals(got.length, sent.length);
  assert(got.every((b, i) => b === sent[i]), "the bytes arrive in order, unchanged");
});

Deno.test("growChildPipe() leaves what is not a pipe alone and returns 0 for it, or for a process that is gone", async () => {
  const child = new Deno.Command("cat", { stdin: "piped", stdout: "null", stderr: "null" }).spawn();
  assertEquals(growChildPipe(child.pid, 1), 0, "stdout is /dev/null");
  assertEquals(growChildPipe(child.pid, 9), 0, "no such descriptor");
  await child.stdin.close();
  await child.status;
  assertEquals(growChildPipe(child.pid, 0), 0, "the process has exited");
});

Deno.test("SshProcess grows the pipe from ssh's stdout to 1 MiB", async () => {
  const ssh = SshProcess.spawn("cat", []);
  assertEquals(ssh.stdoutPipeBytes, PIPE_BYTES);
  await ssh.close();
});
