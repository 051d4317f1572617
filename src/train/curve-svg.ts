/**
 * A small line chart written as SVG text (the learning curve of a run): axes with "nice" ticks,
 * labels, a legend, one polyline per series with optional markers. No charting dependency.
 */

export interface Series {
  name: string;
  /** [x, y] points; non-finite ones are skipped (the line breaks there). */
  points: [number, number][];
  color: string;
  /** Draw a dot on each point (for sparse series such as evaluations). */
  markers?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed y range; default: from the data. */
  yRange?: [number, number];
  width?: number;
  height?: number;
}

const MARGIN = { left: 64, right: 24, top: 40, bottom: 52 };

export function renderLineChart(options: ChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 420;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const finite = options.series.flatMap((s) =>
    s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  );
  const [x0, x1] = paddedRange(
    finite.map((p) => p[0]),
    [0, 1],
  );
  const [y0, y1] =
    options.yRange ??
    paddedRange(
      finite.map((p) => p[1]),
      [0, 1],
    );
  const xTicks = niceTicks(x0, x1, 6);
  const yTicks = niceTicks(y0, y1, 5);
  const xs = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const ys = (y: number) => MARGIN.top + plotH - ((y - y0) / (y1 - y0)) * plotH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="${MARGIN.top / 2 + 4}" text-anchor="middle" font-size="15">${escapeXml(options.title)}</text>`,
  );
  // Grid and ticks.
  for (const t of yTicks) {
    const y = fmt(ys(t));
    out.push(
      `<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="#e4e4e4"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${tickLabel(t)}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = fmt(xs(t));
    out.push(
      `<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="#e4e4e4"/>`,
      `<text x="${x}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${tickLabel(t)}</text>`,
    );
  }
  // Axes and their labels.
  out.push(
    `<line x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotH}" stroke="black"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text x="16" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${MARGIN.top + plotH / 2})">${escapeXml(options.yLabel)}</text>`,
  );
  // Series: one polyline per unbroken run of finite points.
  for (const s of options.series) {
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) {
        out.push(
          `<polyline fill="none" stroke="${escapeXml(s.color)}" stroke-width="2" points="${run.join(" ")}"/>`,
        );
      }
      run = [];
    };
    for (const [x, y] of s.points) {
      if (!(Number.isFinite(x) && Number.isFinite(y))) {
        flush();
        continue;
      }
      run.push(`${fmt(xs(x))},${fmt(ys(y))}`);
      if (s.markers) {
        out.push(`<circle cx="${fmt(xs(x))}" cy="${fmt(ys(y))}" r="3" fill="${escapeXml(s.color)}"/>`);
      }
    }
    flush();
  }
  // Legend, top left inside the plot.
  options.series.forEach((s, i) => {
    const y = MARGIN.top + 14 + i * 18;
    const x = MARGIN.left + 12;
    out.push(
      `<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${escapeXml(s.color)}" stroke-width="2"/>`,
      `<text x="${x + 28}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** Ticks at 1, 2 or 5 × 10^k spacing covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
  }
  return ticks;
}

function paddedRange(values: number[], fallback: [number, number]): [number, number] {
  if (values.length === 0) return fallback;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi === lo) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

function tickLabel(t: number): string {
  if (Math.abs(t) >= 10_000) return `${Number((t / 1000).toPrecision(6))}k`;
  return String(Number(t.toPrecision(6)));
}

function fmt(v: number): string {
  return v.toFixed(2);
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}
