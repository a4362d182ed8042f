import { assert, assertEquals, assertStringIncludes } from "./support/assert.ts";
import { run, sqlbk, tempDir } from "./support/db.ts";
import { placeBackup } from "./support/backups.ts";
import { formatBackupName } from "../src/naming.ts";
import { escapeHtml } from "../src/monitor/html.ts";

const CHROMIUM = "/usr/bin/chromium";
const HOUR = 3_600_000;
// A name that would run script and load an image if it were not escaped.
const EVIL = `<img src=x onerror=console.error(1)>&"q'`;

function chromiumArgs(profile: string, ...extra: string[]): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
    ...extra,
  ];
}

Deno.test("sqlbk status --html writes a self-contained page that headless Chromium renders without console errors, every name escaped", async () => {
  await using dir = await tempDir();
  const backups = dir.join("backups");
  await Deno.mkdir(backups);
  const now = Date.now();
  // A nightly app backup with one missed night and a sudden size drop at the end.
  for (const daysAgo of [9, 8, 7, 6, 4, 3, 2, 1]) {
    const name = formatBackupName("app", new Date(now - daysAgo * 24 * HOUR + (daysAgo % 3) * 600_000), {
      strategy: "online",
    });
    await placeBackup(backups, name, { rows: daysAgo === 1 ? 20 : 400 + daysAgo * 50 });
  }
  await placeBackup(backups, formatBackupName(EVIL, new Date(now - 40 * HOUR), { strategy: "vacuum" }), { rows: 10 });
  const config = dir.join("sqlbk.toml");
  await Deno.writeTextFile(
    config,
    `backup_dir = ${JSON.stringify(backups)}\n[databases.app]\nsource_path = "/srv/app.db"\n` +
      `[databases.orders]\nsource_path = "/srv/orders.db"\n`,
  );
  const page = dir.join("status.html");
  const out = await sqlbk(["status", "-c", config, "--html", page]);
  assertEquals(out.code, 1, out.stderr); // orders is missing
  const html = await Deno.readTextFile(page);
  assert(!/\b(src|href)=["']?(https?:|\/\/)/i.test(html), "the page loads something from outside");
  assert(!/<script|<link|@import|url\(/i.test(html), "the page is not self-contained");
  assertStringIncludes(html, escapeHtml(EVIL));
  assert(!html.includes("<img"), "a name went into the page unescaped");
  assertStringIncludes(html, `<meta name="viewport" content="width=device-width, initial-scale=1">`);
  assertEquals((html.match(/<svg /g) ?? []).length, 4); // two charts for each database with backups
  assertStringIncludes(html, `class="gap"`); // the missed night

  // Chromium: the DOM it built has the names as text, and nothing logged to the console.
  const profile = await Deno.makeTempDir({ dir: dir.path, prefix: "chromium-" });
  const url = `file://${page}`;
  const dom = await run(CHROMIUM, chromiumArgs(profile, "--enable-logging=stderr", "--v=0", "--dump-dom", url));
  assertEquals(dom.code, 0, dom.stderr);
  assert(!/CONSOLE|Uncaught|Failed to load resource/i.test(dom.stderr), `console output:\n${dom.stderr}`);
  assert(!dom.stdout.includes("<img"), "Chromium built an element from a name");
  assertStringIncludes(dom.stdout, `&lt;img src=x onerror=console.error(1)&gt;&amp;"q'`);
  for (const name of ["app", "orders"]) assertStringIncludes(dom.stdout, `</span> ${name}</h2>`);
  assertStringIncludes(dom.stdout, `<span class="badge">MISSING</span> orders`);
  assertStringIncludes(dom.stdout, `<span class="badge">FRESH</span> app`);
  assertStringIncludes(dom.stdout, `<span class="badge">STALE</span> &lt;img`);

  // A phone-sized screenshot.
  const png = dir.join("status.png");
  const shot = await run(
    CHROMIUM,
    chromiumArgs(profile, "--enable-logging=stderr", "--v=0", "--window-size=412,1600", `--screenshot=${png}`, url),
  );
  assertEquals(shot.code, 0, shot.stderr);
  assert(!/CONSOLE|Uncaught/i.test(shot.stderr), shot.stderr);
  const bytes = await Deno.readFile(png);
  assertEquals([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const width = new DataView(bytes.buffer).getUint32(16);
  assertEquals(width, 412);
  assert(bytes.length > 20_000, `the screenshot is nearly empty (${bytes.length} bytes)`);
  const keep = Deno.env.get("SQLBK_KEEP_SCREENSHOT");
  if (keep) await Deno.copyFile(png, keep);
});
