// Tiny inline SVG sparklines, built with DOM APIs (no markup strings: titles may carry service names).

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

/**
 * An <svg class="sparkline"> of `values` (null = no data: a gap in the line), scaled from 0 to the largest value
 * (or `max`, whichever is bigger). `title` becomes the tooltip (as text).
 */
export function sparkline(values, { width = 96, height = 22, color = "#3b6fd4", max = 0, title = "" } = {}) {
  const svg = svgEl("svg", { class: "sparkline", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (title) {
    const tip = svgEl("title");
    tip.textContent = title;
    svg.append(tip);
    svg.setAttribute("aria-label", title);
  }
  const numbers = values.filter((v) => v !== null && v !== undefined && Number.isFinite(Number(v))).map(Number);
  const top = Math.max(max, ...numbers, 0);
  const pad = 1.5;
  const n = values.length;
  const x = (i) => (n <= 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (n - 1));
  const y = (v) => (top > 0 ? height - pad - (v / top) * (height - 2 * pad) : height - pad);

  svg.append(svgEl("line", { class: "baseline", x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5 }));
  if (!numbers.length) return svg;

  // One path per run of consecutive points; a lone point becomes a dot.
  let line = "";
  let area = "";
  let run = [];
  const flush = () => {
    if (run.length === 1) {
      const [i, v] = run[0];
      svg.append(svgEl("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 1.4, fill: color }));
    } else if (run.length > 1) {
      const points = run.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      line += `M${points.join("L")}`;
      area += `M${x(run[0][0]).toFixed(1)},${height}L${points.join("L")}L${x(run[run.length - 1][0]).toFixed(1)},${height}Z`;
    }
    run = [];
  };
  values.forEach((value, index) => {
    if (value === null || value === undefined || !Number.isFinite(Number(value))) flush();
    else run.push([index, Number(value)]);
  });
  flush();
  if (area) svg.append(svgEl("path", { class: "area", d: area, fill: color, "fill-opacity": 0.14, stroke: "none" }));
  if (line) svg.append(svgEl("path", { class: "line", d: line, fill: "none", stroke: color, "stroke-width": 1.3 }));
  return svg;
}
