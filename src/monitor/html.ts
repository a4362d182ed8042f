/**
 * The status page: one self-contained HTML file (inline CSS and SVG, no scripts, no
 * external assets) with, per database, a freshness badge, the newest backup, and two
 * charts over the last backups on a shared time axis: archive size (a sudden drop
 * stands out) and time of day (a missed night leaves a gap). Every name is escaped.
 *
 * @module
 */

import { formatBytes } from "../../cli/progress.ts";
import { type DatabaseStatus, formatAge } from "./status.ts";

/** Options for {@link renderStatusPage}. */
export interface StatusPageOptions {
  /** The time of the check, Unix ms. Default: now. */
  now?: number;
  /** How many of the newest backups the charts show. Default 30. */
  lastN?: number;
  /** The page title. Default "sqlbk backup status". */
  title?: string;
}

const _ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Escapes text for HTML content and attribute values.
 *
 * @example
 * ```ts
 * escapeHtml(`<a href="x">`); // "&lt;a href=&quot;x&quot;&gt;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => _ENTITIES[c]);
}

const _W = 320;
const _H = 64;

function _charts(s: DatabaseStatus, now: number, lastN: number): string {
  const points = s.history.slice(-lastN).map((h) => ({ t: Date.parse(h.time), bytes: h.bytes, time: h.time }));
  if (points.length === 0) return `<p class="none">No backups to chart.</p>`;
  const t0 = points[0].t;
  const t1 = Math.max(now, points[points.length - 1].t);
  const span = Math.max(1, t1 - t0);
  const x = (t: number) => 6 + ((t - t0) / span) * (_W - 12);
  const maxBytes = Math.max(1, ...points.map((p) => p.bytes));
  const bars = points.map((p) => {
    const h = Math.max(1, (p.bytes / maxBytes) * (_H - 8));
    return `<rect x="${(x(p.t) - 2).toFixed(1)}" y="${(_H - h).toFixed(1)}" width="4" height="${
      h.toFixed(1)
    }" rx="1"><title>${escapeHtml(`${p.time}: ${formatBytes(p.bytes)}`)}</title></rect>`;
  }).join("");
  const dots = points.map((p) => {
    const d = new Date(p.t);
    const hours = d.getUTCHours() + d.getUTCMinutes() / 60;
    const y = 4 + (hours / 24) * (_H - 8);
    return `<circle cx="${x(p.t).toFixed(1)}" cy="${y.toFixed(1)}" r="3"><title>${escapeHtml(p.time)}</title></circle>`;
  }).join("");
  const grid = [6, 12, 18].map((h) => {
    const y = (4 + (h / 24) * (_H - 8)).toFixed(1);
    return `<line x1="0" x2="${_W}" y1="${y}" y2="${y}"/><text x="2" y="${Number(y) - 2}">${
      String(h).padStart(2, "0")
    }:00</text>`;
  }).join("");
  const range = `${new Date(t0).toISOString().slice(0, 10)} to ${new Date(t1).toISOString().slice(0, 10)}`;
  return `<figure><figcaption>Size of the last ${points.length} backups (largest ${formatBytes(maxBytes)})</figcaption>
<svg class="size" viewBox="0 0 ${_W} ${_H}" role="img" aria-label="backup sizes, ${range}">${bars}</svg></figure>
<figure><figcaption>Time of day (UTC), ${range}</figcaption>
<svg class="tod" viewBox="0 0 ${_W} ${_H}" role="img" aria-label="backup times of day, ${range}"><g class="grid">${grid}</g>${dots}</svg></figure>`;
}

function _card(s: DatabaseStatus, now: number, lastN: number): string {
  const n = s.newest;
  const rows: [string, string][] = n
    ? [
      ["Newest", n.file],
      ["Time", n.time],
      ["Age", `${formatAge(n.ageSeconds)} (max ${formatAge(s.maxAgeSeconds)})`],
      ["Size", formatBytes(n.bytes)],
      ["Strategy / codec", `${n.strategy ?? "-"} / ${n.codec}`],
      ["Verified", n.verified === null ? "unknown (remote)" : n.verified ? "yes" : "no"],
      ["Backups", `${s.backups}, ${formatBytes(s.totalBytes)} in all`],
    ]
    : [["Newest", "none: no backup at all"], ["Max age", formatAge(s.maxAgeSeconds)]];
  return `<section class="db ${s.state}">
<h2><span class="badge">${s.state.toUpperCase()}</span> ${escapeHtml(s.database)}</h2>
<p class="where">${escapeHtml(s.location)}</p>
<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("")}</dl>
${_charts(s, now, lastN)}
</section>`;
}

/**
 * Renders the status page for the databases `sqlbk status` found.
 *
 * @example
 * ```ts
 * import { backupStatus } from "./status.ts";
 * const html = renderStatusPage(backupStatus([], "/var/backups", { expected: ["app"] }));
 * await Deno.writeTextFile("status.html", html);
 * ```
 */
export function renderStatusPage(statuses: DatabaseStatus[], options: StatusPageOptions = {}): string {
  const now = options.now ?? Date.now();
  const lastN = options.lastN ?? 30;
  const title = options.title ?? "sqlbk backup status";
  const count = (state: string) => statuses.filter((s) => s.state === state).length;
  const bad = count("stale") + count("missing");
  const checked = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`${bad > 0 ? `${bad} need attention` : "all fresh"}: ${title}`)}</title>
<style>
:root { color-scheme: light; --fresh: #1a7f37; --stale: #b35900; --missing: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; padding: 12px; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f5f7; color: #1f2328; }
header { max-width: 1100px; margin: 0 auto 12px; }
h1 { font-size: 1.3em; margin: 0 0 4px; }
.summary { margin: 0; color: #57606a; }
main { max-width: 1100px; margin: 0 auto; display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }
.db { background: #fff; border-radius: 8px; padding: 12px; border-top: 6px solid var(--c); box-shadow: 0 1px 2px #0002; min-width: 0; }
.db.fresh { --c: var(--fresh); } .db.stale { --c: var(--stale); } .db.missing { --c: var(--missing); }
h2 { font-size: 1.1em; margin: 0; overflow-wrap: anywhere; }
.badge { display: inline-block; background: var(--c); color: #fff; border-radius: 4px; padding: 1px 6px; font-size: .75em; vertical-align: middle; letter-spacing: .04em; }
.where { margin: 2px 0 8px; color: #57606a; font-size: .85em; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0 0 8px; font-size: .9em; }
dt { color: #57606a; } dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 6px 0 0; } figcaption { font-size: .8em; color: #57606a; }
svg { width: 100%; height: auto; background: #f6f8fa; border-radius: 4px; display: block; }
svg.size rect { fill: var(--c); } svg.tod circle { fill: var(--c); }
.grid line { stroke: #d0d7de; stroke-width: .5; } .grid text { font-size: 7px; fill: #8c959f; }
.none { color: #57606a; font-size: .9em; }
</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="summary">${count("fresh")} fresh, ${count("stale")} stale, ${count("missing")} missing; checked ${checked}</p>
</header>
<main>
${statuses.map((s) => _card(s, now, lastN)).join("\n")}
</main>
</body>
</html>
`;
}
