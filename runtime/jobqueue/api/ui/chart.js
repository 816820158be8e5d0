// Throughput as stacked bars, one per minute, in SVG built through the DOM.
// Colours come from CSS classes, so the chart follows the colour scheme.

const NS = "http://www.w3.org/2000/svg";
const SERIES = ["succeeded", "dlq", "cancelled"];

function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export function throughputChart(points, label) {
  const width = 300;
  const height = 80;
  const top = Math.max(1, ...points.map((p) => SERIES.reduce((s, k) => s + p[k], 0)));
  const barW = width / Math.max(1, points.length);
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height + 14}`,
    class: "chart",
    role: "img",
    "aria-label": label,
  });
  root.append(svg("title", {}, label));
  points.forEach((p, i) => {
    let y = height;
    const minute = new Date(p.minute).toLocaleTimeString(undefined, { timeStyle: "short" });
    const group = svg("g", {});
    group.append(svg("title", {}, `${minute}: ${p.succeeded} succeeded, ${p.dlq} dlq, ` +
                                  `${p.cancelled} cancelled`));
    for (const k of SERIES) {
      const h = (p[k] / top) * height;
      if (h <= 0) continue;
      y -= h;
      group.append(svg("rect", { x: i * barW + 1, y, width: Math.max(1, barW - 2), height: h,
                                 class: `bar bar-${k}` }));
    }
    root.append(group);
  });
  root.append(svg("line", { x1: 0, y1: height + 0.5, x2: width, y2: height + 0.5, class: "axis" }));
  root.append(svg("text", { x: 0, y: height + 12, class: "tick" }, `${points.length} min ago`));
  root.append(svg("text", { x: width, y: height + 12, class: "tick end" }, "now"));
  root.append(svg("text", { x: 2, y: 10, class: "tick" }, `${top}/min`));
  return root;
}
