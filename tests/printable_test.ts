import { assertEquals } from "./support/assert.ts";
import { printable, safeJson } from "../src/printable.ts";

/** Every character a terminal acts on that printable() and safeJson() must escape. */
const UNSAFE = [
  ..."\x00\x07\x08\x0a\x0d\x1b\x7f\x85\x9b",
  ..."\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
];

Deno.test("printable() escapes control characters in server text and bounds its length", () => {
  assertEquals(printable("ok\x1b[2J\r\nx\x7f\u0085"), "ok\\x1b[2J\\x0d\\x0ax\\x7f\\x85");
  assertEquals(printable("x".repeat(10), 4), "xxxx...");
  assertEquals(printable("db1.example.com: ünïcode"), "db1.example.com: ünïcode");
});

Deno.test("printable() escapes BiDi controls and line separators as \\u escapes", () => {
  assertEquals(printable("app\u202egpj.db", Infinity), "app\\u202egpj.db");
  assertEquals(printable("a\u2028error: forged\u2029b"), "a\\u2028error: forged\\u2029b");
  assertEquals(printable("\u2066x\u2069\u200e\u200f\u061c"), "\\u2066x\\u2069\\u200e\\u200f\\u061c");
  for (const c of UNSAFE) {
    const out = printable(`a${c}b`);
    assertEquals([...out].some((ch) => UNSAFE.includes(ch)), false, JSON.stringify(out));
  }
  // Other non-ASCII text is kept.
  assertEquals(printable("日本語 Ωμέγα – ok"), "日本語 Ωμέγα – ok");
});

Deno.test("safeJson() leaves no raw terminal control in its output and parses back to the same value", () => {
  const value = { name: `x${UNSAFE.join("")}y`, n: 1, list: ["\u202e", "plain"] };
  const text = safeJson(value);
  assertEquals([...text].some((ch) => UNSAFE.includes(ch)), false, text);
  assertEquals(JSON.parse(text), value);
  assertEquals(safeJson({ file: "a\u202eb" }), '{"file":"a\\u202eb"}');
});
