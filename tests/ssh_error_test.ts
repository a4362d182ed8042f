import { assertEquals } from "./support/assert.ts";
import { printable, SshError } from "../src/pull/ssh_error.ts";

Deno.test("printable() escapes control characters in server text and bounds its length", () => {
  assertEquals(printable("ok\x1b[2J\r\nx\x7f\u0085"), "ok\\x1b[2J\\x0d\\x0ax\\x7f\\x85");
  assertEquals(printable("x".repeat(10), 4), "xxxx...");
  assertEquals(printable("db1.example.com: ünïcode"), "db1.example.com: ünïcode");
});

Deno.test("SshError carries its kind and whether a retry may help", () => {
  const err = new SshError("refused", "Cannot connect", { retryable: true });
  assertEquals([err.name, err.kind, err.retryable, err.message], ["SshError", "refused", true, "Cannot connect"]);
  assertEquals(new SshError("auth", "rejected").retryable, false);
});
