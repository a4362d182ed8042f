import { assertEquals, assertThrows } from "./support/assert.ts";
import { DurationError, formatDuration, formatDurationNs, parseDuration, parseDurationNs } from "../src/duration.ts";

Deno.test("parseDuration() reads Go duration text into milliseconds", () => {
  assertEquals(parseDuration("10ms"), 10);
  assertEquals(parseDuration("0s"), 0);
  assertEquals(parseDuration("0"), 0);
  assertEquals(parseDuration("24h"), 86_400_000);
  assertEquals(parseDuration("1h30m"), 5_400_000);
  assertEquals(parseDuration("1.5s"), 1500);
  assertEquals(parseDuration("2h45m30.5s"), (2 * 3600 + 45 * 60 + 30.5) * 1000);
  assertEquals(parseDuration("500us"), 0.5);
  assertEquals(parseDuration("1µs"), 0.001);
  assertEquals(parseDuration("-1s"), -1000);
  assertEquals(parseDurationNs("300ns"), 300n);
});

Deno.test("parseDuration() rejects text Go rejects, with a hint for days", () => {
  for (const bad of ["", "10", "1d", "5x", "ms", "1h 30m", " 1s", "1.s.", "h1"]) {
    assertThrows(() => parseDuration(bad), DurationError, `"${bad}"`);
  }
  assertThrows(() => parseDuration("7d"), DurationError, "days are not a unit");
});

Deno.test("formatDuration() writes Go's canonical form", () => {
  assertEquals(formatDuration(86_400_000), "24h0m0s");
  assertEquals(formatDuration(5_400_000), "1h30m0s");
  assertEquals(formatDuration(900_000), "15m0s");
  assertEquals(formatDuration(30_000), "30s");
  assertEquals(formatDuration(500), "500ms");
  assertEquals(formatDuration(0), "0s");
  assertEquals(formatDuration(1500), "1.5s");
  assertEquals(formatDuration(61_000), "1m1s");
  assertEquals(formatDuration(-2000), "-2s");
  assertEquals(formatDurationNs(1500n), "1.5µs");
  assertEquals(formatDurationNs(1n), "1ns");
});

Deno.test("formatDuration() and parseDuration() round-trip", () => {
  for (const text of ["24h0m0s", "1h30m0s", "15m0s", "30s", "500ms", "0s", "1h0m0.001s", "2562047h47m16.854775807s"]) {
    assertEquals(formatDurationNs(parseDurationNs(text)), text);
  }
});
