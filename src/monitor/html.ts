/**
 * The status page: one self-contained HTML file (inline CSS and SVG, no scripts, no
 * external assets) with, per database, a freshness badge, the newest backup, and two
 * charts over the last backups on a shared time axis: archive size (a sudden drop
 * stands out) and time of day (a missed night leaves a gap). Every name is escaped.
 *
 * @module
 */

import { formatBytes } from "../format.ts";
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
const _H = 80;
const _LEFT = 30;

/** Median gap between consecutive times, in ms (0 for fewer than two). */
function _medianGap(times: number[]): number {
  const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
  return gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0;
}

function _charts(s: DatabaseStatus, lastN: number): string {
  const points = s.history.slice(-lastN).map((h) => ({ t: Date.parse(h.time), bytes: h.bytes, time: h.time }));
  if (points.length === 0) return `<p class="none">No backups to chart.</p>`;
  // One slot per backup, oldest left; a gap much longer than usual is marked between slots.
  const slot = (_W - _LEFT - 4) / Math.max(points.length, 1);
  const x = (i: number) => _LEFT + slot * (i + 0.5);
  const usual = _medianGap(points.map((p) => p.t));
  const gaps = points.slice(1).map((p, i) => ({ i: i + 1, ms: p.t - points[i].t }))
    .filter((g) => usual > 0 && g.ms > 2 * usual)
    .map((g) => {
      const gx = (x(g.i) - slot / 2).toFixed(1);
      return `<line class="gap" x1="${gx}" x2="${gx}" y1="0" y2="${_H}"><title>${
        escapeHtml(`gap of ${formatAge(Math.round(g.ms / 1000))} (usually ${formatAge(Math.round(usual / 1000))})`)
      }</title></line>`;
    }).join("");
  const maxBytes = Math.max(1, ...points.map((p) => p.bytes));
  const w = Math.max(2, Math.min(14, slot * 0.7));
  const bars = points.map((p, i) => {
    const h = Math.max(1, (p.bytes / maxBytes) * (_H - 8));
    return `<rect x="${(x(i) - w / 2).toFixed(1)}" y="${(_H - h).toFixed(1)}" width="${w.toFixed(1)}" height="${
      h.toFixed(1)
    }" rx="1"><title>${escapeHtml(`${p.time}: ${formatBytes(p.bytes)}`)}</title></rect>`;
  }).join("");
  const hourY = (hours: number) => 6 + (hours / 24) * (_H - 12);
  const dots = points.map((p, i) => {
    const d = new Date(p.t);
    const y = hourY(d.getUTCHours() + d.getUTCMinutes() / 60);
    return `<circle cx="${x(i).toFixed(1)}" cy="${y.toFixed(1)}" r="3.5"><title>${escapeHtml(p.time)}</title></circle>`;
  }).join("");
  const grid = [0, 6, 12, 18, 24].map((h) => {
    const y = hourY(h).toFixed(1);
    return `<line x1="${_LEFT}" x2="${_W}" y1="${y}" y2="${y}"/><text x="${_LEFT - 3}" y="${Number(y) + 3}">${
      String(h).padStart(2, "0")
    }h</text>`;
  }).join("");
  const sizeGrid = `<line x1="${_LEFT}" x2="${_W}" y1="8" y2="8"/><text x="${_LEFT - 3}" y="11">max</text>` +
    `<line x1="${_LEFT}" x2="${_W}" y1="${_H}" y2="${_H}"/><text x="${_LEFT - 3}" y="${_H}">0</text>`;
  const range = `${points[0].time.slice(0, 10)} to ${points[points.length - 1].time.slice(0, 10)}`;
  return `<figure><figcaption>Size of the last ${points.length} backup${
    points.length === 1 ? "" : "s"
  }, ${range} (max ${formatBytes(maxBytes)})</figcaption>
<svg class="size" viewBox="0 0 ${_W} ${_H}" role="img" aria-label="backup sizes, ${range}"><g class="grid">${sizeGrid}</g>${gaps}${bars}</svg></figure>
<figure><figcaption>Time of day (UTC) of each backup</figcaption>
<svg class="tod" viewBox="0 0 ${_W} ${_H}" role="img" aria-label="backup times of day, ${range}"><g class="grid">${grid}</g>${gaps}${dots}</svg></figure>`;
}

function _card(s: DatabaseStatus, lastN: number): string {
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
${_charts(s, lastN)}
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
.grid line { stroke: #d0d7de; stroke-width: .5; } .grid text { font-size: 8px; fill: #6e7781; text-anchor: end; }
line.gap { stroke: var(--missing); stroke-width: 1.5; stroke-dasharray: 3 2; }
.none { color: #57606a; font-size: .9em; }
</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="summary">${count("fresh")} fresh, ${count("stale")} stale, ${count("missing")} missing; checked ${checked}</p>
</header>
<main>
${statuses.map((s) => _card(s, lastN)).join("\n")}
</main>
</body>
</html>
`;
}
