import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { clearLongTimer, MAX_TIMER_MS, setLongInterval, setLongTimeout } from "../src/timers.ts";
import { sleep } from "../src/sleep.ts";

Deno.test("sleep() of 600h waits (it does not fire at once as setTimeout would) and ends on abort", async () => {
  const controller = new AbortController();
  let settled = false;
  const p = sleep(600 * 3_600_000, controller.signal).finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 200));
  assertEquals(settled, false);
  controller.abort(new Error("stop"));
  await assertRejects(() => p, Error, "stop");
});

Deno.test("setLongTimeout() and setLongInterval() beyond 2^31 ms do not fire early; short ones fire", async () => {
  let fired = 0;
  const long = setLongTimeout(() => fired++, MAX_TIMER_MS * 3);
  const longEvery = setLongInterval(() => fired++, MAX_TIMER_MS + 1);
  let ticks = 0;
  const every = setLongInterval(() => ticks++, 20);
  let once = false;
  setLongTimeout(() => (once = true), 10);
  await new Promise((r) => setTimeout(r, 250));
  clearLongTimer(long);
  clearLongTimer(longEvery);
  clearLongTimer(every);
  const after = ticks;
  await new Promise((r) => setTimeout(r, 60));
  assertEquals(fired, 0);
  assert(once);
  assert(ticks >= 3, `ticked ${ticks} times`);
  assertEquals(ticks, after, "a cleared interval stops");
});
