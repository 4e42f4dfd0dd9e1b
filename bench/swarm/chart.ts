/**
 * The run's chart, a self-contained SVG (no script, no fonts, no
 * dependencies): for each system, the number of peers that have the whole
 * file against seconds since "go" — a step curve per run, the median run
 * drawn bold — with T_min (Kumar–Ross) and the central-server minimum as
 * vertical lines. A curve that reaches N peers left of another finished
 * sooner; the distance from the T_min line is how far from optimal it is.
 */

export interface ChartSeries {
  label: string;
  color: string;
  /** Completion times in seconds, one array per run. */
  runs: number[][];
  /** Index into `runs` of the median run (drawn bold). */
  medianRun: number;
}

export interface ChartInput {
  title: string;
  subtitle: string;
  peers: number;
  tMinSeconds: number;
  centralServerSeconds: number;
  series: ChartSeries[];
}

const W = 820;
const H = 500;
const M = { left: 70, right: 30, top: 80, bottom: 60 };

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** About `count` round tick values from 0 to max. */
export function niceTicks(max: number, count = 6): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

export function renderChart(input: ChartInput): string {
  const all = input.series.flatMap((s) => s.runs.flat());
  const xMaxData = Math.max(input.tMinSeconds, input.centralServerSeconds, ...all) * 1.05;
  const xTicks = niceTicks(xMaxData);
  const xMax = Math.max(xTicks[xTicks.length - 1], xMaxData);
  const yTicks = niceTicks(input.peers, Math.min(input.peers, 8)).filter((v) => Number.isInteger(v));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (s: number) => M.left + (s / xMax) * pw;
  const y = (n: number) => M.top + ph - (n / input.peers) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${M.left}" y="24" font-size="16" font-weight="bold">${esc(input.title)}</text>`);
  out.push(`<text x="${M.left}" y="62" fill="#444">${esc(input.subtitle)}</text>`);
  // grid and axes
  for (const t of xTicks) {
    out.push(`<line x1="${x(t)}" y1="${M.top}" x2="${x(t)}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x(t)}" y="${M.top + ph + 18}" text-anchor="middle">${t}</text>`);
  }
  for (const t of yTicks) {
    out.push(`<line x1="${M.left}" y1="${y(t)}" x2="${M.left + pw}" y2="${y(t)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 8}" y="${y(t) + 4}" text-anchor="end">${t}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 16}" text-anchor="middle">seconds since all peers started (go)</text>`);
  out.push(`<text transform="translate(20 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">peers with the complete file</text>`);
  // bounds: T_min labelled just above the plot, the central-server minimum at the bottom, left of its line
  // (no curve can be left of T_min, and the curves run along the axis there)
  const vline = (sec: number, color: string, dash: string) =>
    out.push(`<line x1="${x(sec)}" y1="${M.top}" x2="${x(sec)}" y2="${M.top + ph}" stroke="${color}" stroke-width="1.5" stroke-dasharray="${dash}"/>`);
  vline(input.tMinSeconds, "#c00", "6 4");
  out.push(`<text x="${x(input.tMinSeconds)}" y="${M.top - 5}" fill="#c00" text-anchor="middle">T_min ${input.tMinSeconds.toFixed(1)} s</text>`);
  if (Math.abs(input.centralServerSeconds - input.tMinSeconds) > 1e-6) {
    vline(input.centralServerSeconds, "#777", "2 4");
    out.push(`<text x="${x(input.centralServerSeconds) - 4}" y="${M.top + ph - 8}" fill="#555" text-anchor="end">central-server minimum ${input.centralServerSeconds.toFixed(1)} s</text>`);
  }
  // step curves
  for (const s of input.series) {
    s.runs.forEach((times, i) => {
      const sorted = [...times].sort((a, b) => a - b);
      let d = `M ${x(0)} ${y(0)}`;
      sorted.forEach((t, k) => (d += ` H ${x(t)} V ${y(k + 1)}`));
      const bold = i === s.medianRun;
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${bold ? 2.5 : 1}" ${bold ? "" : 'stroke-dasharray="3 3" opacity="0.6"'}/>`);
      if (bold) for (const [k, t] of sorted.entries()) out.push(`<circle cx="${x(t)}" cy="${y(k + 1)}" r="3" fill="${s.color}"/>`);
    });
  }
  // legend: one row under the title, outside the plot, so no curve hides it
  let lx = M.left;
  for (const s of input.series) {
    out.push(`<line x1="${lx}" y1="40" x2="${lx + 25}" y2="40" stroke="${s.color}" stroke-width="2.5"/>`);
    out.push(`<text x="${lx + 31}" y="44">${esc(s.label)}</text>`);
    lx += 45 + s.label.length * 7;
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
