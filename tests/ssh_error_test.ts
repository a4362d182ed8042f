import { assertEquals } from "./support/assert.ts";
import { SshError } from "../src/pull/ssh_error.ts";

Deno.test("SshError carries its kind and whether a retry may help", () => {
  const err = new SshError("refused", "Cannot connect", { retryable: true });
  assertEquals([err.name, err.kind, err.retryable, err.message], ["SshError", "refused", true, "Cannot connect"]);
  assertEquals(new SshError("auth", "rejected").retryable, false);
});
