import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { CLI_PERMISSIONS, ROOT, run } from "./support/db.ts";

Deno.test("examples/worker_app.ts runs a scheduled backup in-process while its event loop keeps ticking", async () => {
  const out = await run(Deno.execPath(), ["run", "--quiet", ...CLI_PERMISSIONS, `${ROOT}examples/worker_app.ts`], {
    env: { WORKER_APP_ROWS: "20000" },
  });
  assertEquals(out.code, 0, out.stderr);
  const m =
    /backup job took (\d+) ms; during it the event loop ran (\d+) ticks of 10 ms with a max lag of ([\d.]+) ms, and the app wrote (\d+) rows/
      .exec(out.stdout);
  assert(m, out.stdout + out.stderr);
  assertMatch(out.stderr, /job 1 completed; next run/);
  const [took, ticks, lag] = [Number(m[1]), Number(m[2]), Number(m[3])];
  assert(ticks >= Math.floor(took / 40), `only ${ticks} ticks in ${took} ms`);
  assert(lag < 1_000, `max lag ${lag} ms`);
});
