// The service map page: services, databases, queues and external endpoints with the calls between them, from
// /api/v1/service-map/, drawn left to right as an SVG graph (columns = the API's layers, rows = its order), with a
// side panel per call (/api/v1/service-map/edge/: latency, client vs server p95, example traces) and a sortable
// table of the calls. The URL holds the state: lookback (or start / end), service, hops and compare_at are passed to
// the API unchanged; ?sort= is display-only. Service and endpoint names are untrusted: they only ever land in
// textContent or attribute values set through the DOM.

import { bindSortHeaders, markSortedHeader, sortFromUrl, sortRows } from "./sorting.js";
import { el, renderState } from "./ui.js";
import { apiUrl, getJSON } from "./api.js";
import { formatDuration, formatPercent, formatPerMinute } from "./format.js";
import { bindLookbackPicker, refreshWhileVisible } from "./timerange.js";
import { svg, svgText, tooltip, tspan } from "./svg.js";

const REFRESH_MS = 30_000;
const LAG_SHOWN_ABOVE_S = 5;
const DEFAULT_SORT = "-rate";
const TIME_KEYS = ["lookback", "start", "end"];
const DISPLAY_ONLY = ["sort"];

// Geometry of the drawing (px). A column holds one layer; labels sit under the nodes, call labels between columns.
const COL_W_MAX = 300; // columns shrink to this range to fit the card; a wider map scrolls
const COL_W_MIN = 230;
const ROW_H = 124;
const PAD_X = 96;
const PAD_TOP = 40;
const PAD_BOTTOM = 56;
const R_MIN = 12;
const R_MAX = 34;
const MAX_LABEL = 26; // characters of a name drawn; the full name is in the tooltip, the table and the panel

const KIND_LABEL = {
  service: "service",
  database: "database",
  messaging: "queue",
  external: "external",
  unknown: "unknown",
  clients: "clients",
};
const KIND_ICON = { database: "DB", messaging: "MQ", external: "EXT", unknown: "?", clients: "\u2192" };

// ---------------------------------------------------------------------------------------------------------------
// Formatting and URLs

function formatSeconds(seconds) {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Calls per minute: "12.3/min", "0.50/min", "240/min". */
/** "err-ok" below 1 %, "err-warn" below 5 %, else "err-high": the colour of a node or a call. */
function errorLevel(percent) {
  const pct = Number(percent) || 0;
  if (pct >= 5) return "err-high";
  if (pct >= 1) return "err-warn";
  return "err-ok";
}

/** "2026-11-21 11:35:05" (UTC) from nanoseconds since the epoch as a string. */
function formatStart(startNs) {
  return new Date(Number(BigInt(startNs) / 1000000n)).toISOString().slice(0, 19).replace("T", " ");
}

function shorten(name) {
  const text = String(name);
  return text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}\u2026` : text;
}

/** The time range of the page's URL (lookback or start / end), for the API and for links to other pages. */
function timeParams() {
  const current = new URLSearchParams(window.location.search);
  const params = new URLSearchParams();
  for (const key of TIME_KEYS) if (current.get(key)) params.set(key, current.get(key));
  return params;
}

function servicePath(name) {
  const query = timeParams().toString();
  return `/services/${encodeURIComponent(name)}/${query ? `?${query}` : ""}`;
}

function tracePath(traceId, spanId) {
  const path = `/traces/${encodeURIComponent(traceId)}/`;
  return spanId ? `${path}?span=${encodeURIComponent(spanId)}` : path;
}

/** The datetime-local value (UTC, to the minute) for ?compare_at=, which may be ISO 8601 or epoch seconds/ms/µs/ns. */
function compareInputValue(text) {
  if (!text) return "";
  let date;
  if (/^\d+(\.\d+)?$/.test(text)) {
    const value = Number(text);
    const ms = value < 1e11 ? value * 1e3 : value < 1e14 ? value : value < 1e17 ? value / 1e3 : value / 1e6;
    date = new Date(ms);
  } else {
    // A time without a zone is UTC here, as in the API (Date would take it as local time).
    const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : `${text}Z`;
    date = new Date(zoned);
  }
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().slice(0, 16);
}

// ---------------------------------------------------------------------------------------------------------------
// Geometry

/** A point of the cubic Bézier p0..p3 at t. */
function bezier(t, [p0, p1, p2, p3]) {
  const u = 1 - t;
  return {
    x: u * u * u * p0.x + 3 * u * u * t * p1.x + 3 * u * t * t * p2.x + t * t * t * p3.x,
    y: u * u * u * p0.y + 3 * u * u * t * p1.y + 3 * u * t * t * p2.y + t * t * t * p3.y,
  };
}

function radius(node) {
  const r = R_MIN + 3 * Math.sqrt(Math.max(0, Number(node.rate_per_minute) || 0));
  return Math.min(R_MAX, Math.max(R_MIN, r));
}

function changeFlags(change) {
  if (!change) return [];
  const flags = [];
  if (change.slower) flags.push("slower");
  if (change.more_errors) flags.push("more-errors");
  return flags;
}

const FLAG_TEXT = { slower: "slower", "more-errors": "more errors" };

// ---------------------------------------------------------------------------------------------------------------
// Layout and drawing

/**
 * Pixel centre and radius of every node: x from its layer, y from its order, each column centred vertically. Columns
 * are as wide as `fitWidth` allows between COL_W_MIN and COL_W_MAX.
 */
function positions(nodes, fitWidth = 0, padTop = PAD_TOP) {
  const byLayer = new Map();
  for (const node of nodes) {
    const layer = Number(node.layer) || 0;
    if (!byLayer.has(layer)) byLayer.set(layer, []);
    byLayer.get(layer).push(node);
  }
  const layers = [...byLayer.keys()].sort((a, b) => a - b);
  const tallest = Math.max(1, ...layers.map((layer) => byLayer.get(layer).length));
  const gaps = Math.max(1, layers.length - 1);
  const colW = Math.round(Math.min(COL_W_MAX, Math.max(COL_W_MIN, (fitWidth - 2 * PAD_X) / gaps)));
  const pos = new Map();
  layers.forEach((layer, column) => {
    const members = byLayer.get(layer).sort((a, b) => (Number(a.order) || 0) - (Number(b.order) || 0));
    const top = padTop + ((tallest - members.length) * ROW_H) / 2;
    members.forEach((node, row) => {
      pos.set(node.id, { x: PAD_X + column * colW, y: top + row * ROW_H + ROW_H / 2 - 14, r: radius(node), column });
    });
  });
  return { pos, width: PAD_X * 2 + (layers.length - 1) * colW, height: padTop + tallest * ROW_H };
}

// How far a call that skips columns keeps clear of the services it passes (their name and figures sit below them).
const CLEARANCE = 26;
const STACK_STEP = 22;

/** Services (with their captions) that a forward call's curve from `a` to `b` runs through, `a` and `b` excluded. */
function passedNodes(points, a, b, others) {
  return others.filter((o) => {
    if (o.x <= a.x + a.r || o.x >= b.x - b.r) return false;
    // The curve's height where it passes the node (the curve is monotonic in x): bisect for t.
    let t = 0.5;
    for (let lo = 0, hi = 1, i = 0; i < 20; i += 1) {
      t = (lo + hi) / 2;
      if (bezier(t, points).x < o.x) lo = t;
      else hi = t;
    }
    const y = bezier(t, points).y;
    return y > o.y - o.r - CLEARANCE && y < o.y + o.r + 34;
  });
}

/** The path of a call and where its label goes. Forward calls run right; back edges (cycles) swing below. */
function edgeGeometry(edge, a, b, others = []) {
  if (edge.source === edge.target) {
    const top = a.y - a.r;
    const points = [
      { x: a.x - a.r * 0.6, y: top + 4 },
      { x: a.x - 46, y: top - 56 },
      { x: a.x + 46, y: top - 56 },
      { x: a.x + a.r * 0.6, y: top + 2 },
    ];
    return { points, label: { x: a.x, y: top - 50 }, bottom: a.y };
  }
  if (!edge.back_edge && b.x > a.x) {
    const p0 = { x: a.x + a.r, y: a.y };
    const p3 = { x: b.x - b.r - 2, y: b.y };
    const bend = Math.max(40, (p3.x - p0.x) / 2);
    let points = [p0, { x: p0.x + bend, y: p0.y }, { x: p3.x - bend, y: p3.y }, p3];
    let passed = passedNodes(points, a, b, others);
    if (!passed.length) return { points, label: null, bottom: Math.max(a.y, b.y) };
    // A call skipping columns would run through the services there: bow it over them, higher the more columns it
    // skips so calls over the same services stack up. Raise it again if the bow meets another service.
    const skipped = b.column - a.column - 1;
    let apex = Infinity;
    for (let attempt = 0; passed.length && attempt < 6; attempt += 1) {
      apex = Math.min(apex, ...passed.map((o) => o.y - o.r - CLEARANCE - STACK_STEP * (skipped - 1)));
      // A cubic whose control points share a height reaches three quarters of the way to it.
      const lift = (apex - (p0.y + p3.y) / 2) / 0.75;
      const inset = (p3.x - p0.x) * 0.15;
      points = [p0, { x: p0.x + inset, y: p0.y + lift }, { x: p3.x - inset, y: p3.y + lift }, p3];
      passed = passedNodes(points, a, b, others);
    }
    const mid = bezier(0.5, points);
    return { points, label: { x: mid.x, y: mid.y - 7 }, bottom: Math.max(a.y, b.y), top: mid.y - 24 };
  }
  if (b.x === a.x && !edge.back_edge) {
    // Same column: a bow out to the right.
    const p0 = { x: a.x + a.r, y: a.y };
    const p3 = { x: b.x + b.r + 2, y: b.y };
    const points = [p0, { x: p0.x + 90, y: p0.y }, { x: p3.x + 90, y: p3.y }, p3];
    const mid = bezier(0.5, points);
    return { points, label: { x: mid.x + 6, y: mid.y }, bottom: Math.max(a.y, b.y) };
  }
  // A back edge (it closes a cycle): out of the caller's bottom, under both nodes and their labels, up into the callee.
  // The control points lean towards each other, so the curve leaves diagonally rather than straight down through
  // the nodes below in the same column.
  const low = Math.max(a.y + a.r, b.y + b.r) + 58 + Math.min(60, Math.abs(a.x - b.x) / 10);
  const lean = Math.abs(a.x - b.x) * 0.3;
  const p0 = { x: a.x - a.r * 0.7, y: a.y + a.r * 0.7 };
  const p3 = { x: b.x + b.r * 0.7 + 1, y: b.y + b.r * 0.7 + 1 };
  const points = [p0, { x: p0.x - lean, y: low + 20 }, { x: p3.x + lean, y: low + 20 }, p3];
  const mid = bezier(0.5, points);
  return { points, label: { x: mid.x, y: mid.y + 14 }, bottom: low + 34 };
}

function pathData([p0, p1, p2, p3]) {
  const f = (n) => n.toFixed(1);
  return `M${f(p0.x)},${f(p0.y)} C${f(p1.x)},${f(p1.y)} ${f(p2.x)},${f(p2.y)} ${f(p3.x)},${f(p3.y)}`;
}

function edgeText(edge) {
  return `${formatPerMinute(edge.calls_per_minute)} \u00b7 ${formatPercent(edge.error_percent)} \u00b7 p95 ${formatDuration(edge.p95_ns)}`;
}

function edgeDescription(edge) {
  const flags = changeFlags(edge.change).map((flag) => FLAG_TEXT[flag]);
  const changed = flags.length ? ` (${flags.join(", ")} after the compare time)` : "";
  return `${edge.source} \u2192 ${edge.target}: ${formatPerMinute(edge.calls_per_minute)} calls, ${formatPercent(edge.error_percent)} errors, p95 ${formatDuration(edge.p95_ns)}${changed}`;
}

function nodeDescription(node) {
  const kind = node.kind === "service" ? "" : ` (${KIND_LABEL[node.kind] || node.kind}, not instrumented)`;
  const flags = changeFlags(node.change).map((flag) => FLAG_TEXT[flag]);
  const changed = flags.length ? ` (${flags.join(", ")} after the compare time)` : "";
  return `${node.name}${kind}: ${formatPerMinute(node.rate_per_minute)}, ${formatPercent(node.error_percent)} errors, p95 ${formatDuration(node.p95_ns)}${changed}`;
}

function marker(id, className) {
  return svg(
    "marker",
    {
      id,
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 9,
      markerHeight: 9,
      markerUnits: "userSpaceOnUse",
      orient: "auto-start-reverse",
    },
    svg("path", { d: "M0,0 L10,5 L0,10 z", class: className }),
  );
}

function edgeMarker(edge) {
  const flags = changeFlags(edge.change);
  if (flags.includes("more-errors")) return "map-arrow-more-errors";
  if (flags.includes("slower")) return "map-arrow-slower";
  return `map-arrow-${errorLevel(edge.error_percent)}`;
}

/** The map as an SVG element; `onEdge(edge)` opens a call's details. */
function drawMap(result, { onEdge, focus, fitWidth }) {
  const nodes = result.nodes;
  // A service calling itself gets a loop over its node: room for it above the first row.
  const loops = result.edges.some((edge) => edge.source === edge.target);
  const { pos, width, height: nodesHeight } = positions(nodes, fitWidth, loops ? PAD_TOP + 40 : PAD_TOP);

  const fanOut = new Map();
  const fanIn = new Map();
  for (const edge of result.edges) {
    fanOut.set(edge.source, (fanOut.get(edge.source) || 0) + 1);
    fanIn.set(edge.target, (fanIn.get(edge.target) || 0) + 1);
  }

  const edgeLayer = svg("g", { class: "map-edges" });
  let bottom = nodesHeight;
  let top = 0;
  const placed = [...pos.values()];
  for (const edge of result.edges) {
    const a = pos.get(edge.source);
    const b = pos.get(edge.target);
    if (!a || !b) continue;
    const geometry = edgeGeometry(edge, a, b, placed.filter((p) => p !== a && p !== b));
    top = Math.min(top, geometry.top ?? 0);
    let label = geometry.label;
    if (!label) {
      // On the curve where calls spread out: near the callee for a fan-out, near the caller for a fan-in.
      const out = fanOut.get(edge.source) || 0;
      const into = fanIn.get(edge.target) || 0;
      const t = out > into ? 0.6 : out < into ? 0.4 : 0.5;
      const point = bezier(t, geometry.points);
      label = { x: point.x, y: point.y - 7 };
    }
    bottom = Math.max(bottom, geometry.bottom + 20);
    const flags = changeFlags(edge.change);
    const d = pathData(geometry.points);
    const weight = 1.4 + Math.min(4, Math.log10(1 + (Number(edge.calls_per_minute) || 0)) * 1.6);
    const group = svg("g", {
      class: ["map-edge", errorLevel(edge.error_percent), `conn-${String(edge.connection).replace(/[^a-z]/g, "-")}`, edge.back_edge ? "back-edge" : "", flags.length ? "changed" : "", ...flags]
        .filter(Boolean)
        .join(" "),
      tabindex: 0,
      role: "button",
      "data-edge": edge.id,
      "data-calls": edge.calls,
      "data-source": edge.source,
      "data-target": edge.target,
      "aria-label": edgeDescription(edge),
    });
    const text = svgText("", { class: "edge-label", x: label.x.toFixed(1), y: label.y.toFixed(1), "text-anchor": "middle" });
    text.append(tspan(edgeText(edge), { class: "edge-figures" }));
    // Badges on a line of their own above the figures, so a long label does not run into the callee.
    const badges = svgText("", { class: "edge-label edge-badges", x: label.x.toFixed(1), y: (label.y - 14).toFixed(1), "text-anchor": "middle" });
    flags.forEach((flag, index) => badges.append(tspan(`${index ? " " : ""}${FLAG_TEXT[flag]}`, { class: `edge-badge badge-${flag}` })));
    group.append(
      tooltip(`${edgeDescription(edge)}\n${edge.connection} \u00b7 click for details and example traces`),
      svg("path", { class: "edge-line", d, "marker-end": `url(#${edgeMarker(edge)})`, style: `stroke-width:${weight.toFixed(1)}px` }),
      svg("path", { class: "edge-hit", d }),
      text,
      flags.length ? badges : null,
    );
    group.addEventListener("click", () => onEdge(edge));
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onEdge(edge);
      }
    });
    edgeLayer.append(group);
  }

  const nodeLayer = svg("g", { class: "map-nodes" });
  for (const node of nodes) {
    const p = pos.get(node.id);
    const isService = node.kind === "service";
    const flags = changeFlags(node.change);
    const classes = ["map-node", `kind-${node.kind}`, isService ? "" : "virtual", errorLevel(node.error_percent), flags.length ? "changed" : "", ...flags];
    if (focus && node.name === focus) classes.push("focus");
    const attrs = {
      class: classes.filter(Boolean).join(" "),
      transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`,
      tabindex: 0,
      "data-node": node.id,
      "data-kind": node.kind,
      "aria-label": nodeDescription(node),
    };
    let group;
    if (isService) {
      group = svg("a", { ...attrs, href: servicePath(node.name) });
    } else {
      group = svg("g", { ...attrs, role: "img" });
    }
    const unpaired = node.unpaired ? `\n${node.unpaired} span${node.unpaired === 1 ? "" : "s"} whose caller or callee never matched` : "";
    const hint = isService ? "\nclick to open the service" : "\nnot instrumented: seen only from its callers";
    group.append(tooltip(`${nodeDescription(node)}${unpaired}${hint}`));
    const r = p.r;
    if (flags.length) {
      group.append(
        isService
          ? svg("circle", { class: "node-ring", r: r + 6 })
          : svg("rect", { class: "node-ring", x: -r - 6, y: -r - 6, width: 2 * r + 12, height: 2 * r + 12, rx: node.kind === "clients" ? r + 6 : 9 }),
      );
    }
    if (isService) {
      group.append(svg("circle", { class: "node-shape", r }));
    } else {
      group.append(
        svg("rect", { class: "node-shape", x: -r, y: -r, width: 2 * r, height: 2 * r, rx: node.kind === "clients" ? r : 5 }),
        svgText(KIND_ICON[node.kind] || "?", { class: "node-icon", y: 4, "text-anchor": "middle" }),
      );
    }
    group.append(svgText(shorten(node.name), { class: "node-name", y: r + 17, "text-anchor": "middle" }));
    const stats = svgText("", { class: "node-stats", y: r + 32, "text-anchor": "middle" });
    if (!isService) stats.append(tspan(`${KIND_LABEL[node.kind] || node.kind} \u00b7 `, { class: "node-kind" }));
    stats.append(tspan(formatPerMinute(node.rate_per_minute), { class: "node-rate" }), tspan(" \u00b7 "));
    stats.append(tspan(formatPercent(node.error_percent), { class: `node-errors ${errorLevel(node.error_percent)}` }));
    group.append(stats);
    if (flags.length) {
      const badges = svgText("", { class: "node-badges", y: r + 47, "text-anchor": "middle" });
      flags.forEach((flag, index) => badges.append(tspan(`${index ? " " : ""}${FLAG_TEXT[flag]}`, { class: `node-badge badge-${flag}` })));
      group.append(badges);
      bottom = Math.max(bottom, p.y + r + 60);
    }
    nodeLayer.append(group);
  }

  // Calls bowing over the top row need room above it.
  const above = Math.ceil(-top);
  const height = Math.ceil(bottom + PAD_BOTTOM / 2) + above;
  return svg(
    "svg",
    {
      class: "map-svg",
      width,
      height,
      viewBox: `0 ${-above} ${width} ${height}`,
      role: "group",
      "aria-label": "Service map: callers on the left, callees to their right",
    },
    svg(
      "defs",
      {},
      marker("map-arrow-err-ok", "arrow err-ok"),
      marker("map-arrow-err-warn", "arrow err-warn"),
      marker("map-arrow-err-high", "arrow err-high"),
      marker("map-arrow-slower", "arrow slower"),
      marker("map-arrow-more-errors", "arrow more-errors"),
    ),
    edgeLayer,
    nodeLayer,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Calls table

const SORTS = {
  source: (edge) => edge.source,
  target: (edge) => edge.target,
  rate: (edge) => Number(edge.calls_per_minute) || 0,
  errors: (edge) => Number(edge.error_percent) || 0,
  p95: (edge) => edge.p95_ns ?? -1,
};

/** Busiest calls keep their labels; a quieter call's label that would overlap a node or a label already shown is folded away
 * (hovering, focusing or selecting the call shows it). Calls flagged by the comparison always keep theirs. */
function declutterLabels(root) {
  const edges = [...root.querySelectorAll(".map-edge")];
  edges.sort((a, b) => Number(b.classList.contains("changed")) - Number(a.classList.contains("changed")) || Number(b.dataset.calls) - Number(a.dataset.calls));
  // Nodes and their captions are obstacles too: a label drawn across a node or its name makes both unreadable.
  const obstacles = ".map-node .node-shape, .map-node .node-name, .map-node .node-stats, .map-node .node-badges";
  const shown = [...root.querySelectorAll(obstacles)].map((shape) => shape.getBoundingClientRect());
  for (const edge of edges) {
    const label = edge.querySelector(".edge-figures")?.closest("text");
    if (!label) continue;
    const box = label.getBoundingClientRect();
    const overlaps = shown.some((other) => box.left < other.right + 4 && other.left < box.right + 4 && box.top < other.bottom && other.top < box.bottom);
    if (overlaps && !edge.classList.contains("changed")) {
      edge.classList.add("label-folded");
    } else {
      shown.push(box);
    }
  }
}

function sortState() {
  return sortFromUrl(SORTS, DEFAULT_SORT);
}

function endpointCell(name, kind) {
  const cell = el("td", "endpoint");
  if (kind === "service") {
    const link = el("a", "service-link", name);
    link.href = servicePath(name);
    cell.append(link);
  } else {
    cell.append(el("span", "endpoint-name", name));
    if (kind) cell.append(" ", el("span", "kind-tag", KIND_LABEL[kind] || kind));
  }
  return cell;
}

// ---------------------------------------------------------------------------------------------------------------

function main() {
  const root = document.getElementById("map-page");
  if (!root) return;
  const state = document.getElementById("map-state");
  const summary = document.getElementById("map-summary");
  const lag = document.getElementById("map-lag");
  const picker = document.getElementById("range-picker");
  const layoutBox = document.getElementById("map-layout");
  const canvas = document.getElementById("map-canvas");
  const serviceSelect = document.getElementById("map-service");
  const hopsSelect = document.getElementById("map-hops");
  const compareInput = document.getElementById("map-compare");
  const compareClear = document.getElementById("map-compare-clear");
  const changesCard = document.getElementById("map-changes");
  const changesList = document.getElementById("changes-list");
  const changesEmpty = document.getElementById("changes-empty");
  const edgesCard = document.getElementById("edges-card");
  const table = document.getElementById("edges-table");
  const panel = document.getElementById("edge-panel");
  const panelTitle = document.getElementById("edge-title");
  const panelState = document.getElementById("edge-state");
  const panelBody = document.getElementById("edge-body");

  let result = null;
  let controller = null;
  let edgeController = null;
  let lastLoad = 0;
  let selectedEdge = null; // {source, target} of the call in the side panel
  let serviceNames = null; // names offered by the service filter, for `serviceNamesKey`
  let serviceNamesKey = "";
  let drawnWidth = 0;

  // -- filters <-> URL ---------------------------------------------------------------------------------------------

  function setOptions(names) {
    const current = new URLSearchParams(window.location.search).get("service") || "";
    const wanted = [...new Set([...(names || []), ...(current ? [current] : [])])].sort((a, b) => a.localeCompare(b));
    const existing = [...serviceSelect.options].slice(1).map((option) => option.value);
    if (existing.length !== wanted.length || existing.some((name, index) => name !== wanted[index])) {
      serviceSelect.replaceChildren(
        new Option("All services", ""),
        ...wanted.map((name) => new Option(name, name)),
      );
    }
    serviceSelect.value = current;
  }

  function syncFilters() {
    const params = new URLSearchParams(window.location.search);
    const service = params.get("service") || "";
    setOptions(serviceNames || []);
    serviceSelect.value = service;
    hopsSelect.value = params.get("hops") || "1";
    if (!hopsSelect.value) hopsSelect.value = "1";
    hopsSelect.disabled = !service;
    compareInput.value = compareInputValue(params.get("compare_at") || "");
    compareClear.disabled = !params.get("compare_at");
  }

  function navigate(update) {
    const params = new URLSearchParams(window.location.search);
    update(params);
    const query = params.toString();
    history.pushState(null, "", query ? `?${query}` : window.location.pathname);
    syncFilters();
    load();
  }

  serviceSelect.addEventListener("change", () => {
    navigate((params) => {
      if (serviceSelect.value) {
        params.set("service", serviceSelect.value);
        params.set("hops", hopsSelect.value || "1");
      } else {
        params.delete("service");
        params.delete("hops");
      }
    });
  });
  hopsSelect.addEventListener("change", () => {
    navigate((params) => params.set("hops", hopsSelect.value));
  });
  // The field reports a change per edited part (day, hour, minute...): wait for a pause before asking the API.
  let compareTimer = 0;
  compareInput.addEventListener("change", () => {
    clearTimeout(compareTimer);
    compareTimer = setTimeout(() => {
      const value = compareInput.value;
      if (value && !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(value)) return; // still being typed
      const current = new URLSearchParams(window.location.search).get("compare_at") || "";
      if (value === compareInputValue(current) && Boolean(value) === Boolean(current)) return;
      navigate((params) => {
        if (value) params.set("compare_at", `${value}Z`);
        else params.delete("compare_at");
      });
    }, 600);
  });
  compareClear.addEventListener("click", () => {
    clearTimeout(compareTimer);
    compareInput.value = "";
    navigate((params) => params.delete("compare_at"));
  });
  document.getElementById("map-filters").addEventListener("submit", (event) => event.preventDefault());
  window.addEventListener("popstate", syncFilters);

  /** Service names for the filter: the unfiltered map's services, else /api/v1/services/ (once per time range). */
  async function refreshServiceNames() {
    const key = timeParams().toString();
    if (result && !result.focus) {
      serviceNames = result.nodes.filter((node) => node.kind === "service").map((node) => node.name);
      serviceNamesKey = key;
    } else if (serviceNamesKey !== key || !serviceNames) {
      serviceNamesKey = key;
      try {
        const list = await getJSON(apiUrl(root.dataset.apiServices, timeParams()));
        serviceNames = (list.services || []).map((service) => service.name);
      } catch {
        serviceNames = serviceNames || [];
      }
    }
    setOptions(serviceNames);
  }

  // -- rendering ---------------------------------------------------------------------------------------------------

  function showState(kind, message, { retry = false } = {}) {
    renderState(state, kind, message, retry ? () => load() : null);
  }

  function nodeKinds() {
    return new Map(result.nodes.map((node) => [node.id, node.kind]));
  }

  function renderTable() {
    const sort = sortState();
    markSortedHeader(table, sort);
    const kinds = nodeKinds();
    const rows = sortRows(result.edges, SORTS, sort, (a, b) => a.source.localeCompare(b.source) || a.target.localeCompare(b.target)).map((edge) => {
      const flags = changeFlags(edge.change);
      const row = el("tr", [errorLevel(edge.error_percent) === "err-high" ? "has-error" : "", flags.length ? "changed" : ""].filter(Boolean).join(" "));
      row.dataset.edge = edge.id;
      const errors = el("td", "num errors");
      errors.append(el("span", `value ${errorLevel(edge.error_percent)}`, formatPercent(edge.error_percent)));
      errors.append(el("div", "sub", `${Number(edge.errors).toLocaleString("en")} of ${Number(edge.calls).toLocaleString("en")}`));
      const target = endpointCell(edge.target, kinds.get(edge.target));
      for (const flag of flags) target.append(" ", el("span", `change-badge badge-${flag}`, FLAG_TEXT[flag]));
      const details = el("td", "details");
      const button = el("button", "secondary edge-details", "Details");
      button.type = "button";
      button.setAttribute("aria-label", `Details of ${edge.source} \u2192 ${edge.target}`);
      button.addEventListener("click", () => openEdge(edge));
      details.append(button);
      row.append(
        endpointCell(edge.source, kinds.get(edge.source)),
        target,
        el("td", "num rate", formatPerMinute(edge.calls_per_minute)),
        errors,
        el("td", "num p95", formatDuration(edge.p95_ns)),
        details,
      );
      return row;
    });
    document.getElementById("edges-body").replaceChildren(...rows);
  }

  function changeItem(label, change, onOpen) {
    const flags = changeFlags(change);
    const badges = flags.length ? flags : [change.status];
    const item = el("li", badges.join(" "));
    for (const badge of badges) item.append(el("span", `change-badge badge-${badge}`, FLAG_TEXT[badge] || badge), " ");
    if (onOpen) {
      const button = el("button", "linkbutton change-open", label);
      button.type = "button";
      button.addEventListener("click", onOpen);
      item.append(button);
    } else {
      item.append(el("strong", "change-name", label));
    }
    const parts = [];
    const before = change.before || {};
    const after = change.after || {};
    if (change.slower) parts.push(`p95 ${formatDuration(before.p95_ns)} \u2192 ${formatDuration(after.p95_ns)}`);
    if (change.more_errors) parts.push(`errors ${formatPercent(before.error_percent)} \u2192 ${formatPercent(after.error_percent)}`);
    parts.push(`${formatPerMinute(before.rate_per_minute)} \u2192 ${formatPerMinute(after.rate_per_minute)}`);
    item.append(el("span", "change-figures", `: ${parts.join(" \u00b7 ")}`));
    return item;
  }

  function renderChanges() {
    const compare = result.compare;
    changesCard.hidden = !compare;
    if (!compare) {
      changesList.replaceChildren();
      return;
    }
    const span = (part) => formatSeconds(Number(BigInt(part.end_ns) - BigInt(part.start_ns)) / 1e9);
    document.getElementById("changes-window").textContent =
      `split at ${formatStart(compare.at_ns).slice(0, 16)} UTC: ${span(compare.before)} before vs ${span(compare.after)} after`;
    const flagged = [];
    const appeared = []; // calls that only exist on one side: new dependencies, or ones that stopped
    for (const edge of result.edges) {
      const change = edge.change;
      if (!change) continue;
      const open = () => openEdge(edge);
      if (changeFlags(change).length) flagged.push([changeItem(`${edge.source} \u2192 ${edge.target}`, change, open), edge]);
      else if (change.status === "new" || change.status === "gone") appeared.push([changeItem(`${edge.source} \u2192 ${edge.target}`, change, open), edge]);
    }
    for (const [item, edge] of [...flagged, ...appeared]) item.dataset.edge = edge.id;
    const nodes = result.nodes
      .filter((node) => changeFlags(node.change).length)
      .map((node) => {
        const item = changeItem(node.name, node.change, null);
        item.dataset.node = node.id;
        return item;
      });
    const items = [...flagged.map(([item]) => item), ...nodes, ...appeared.map(([item]) => item)];
    changesList.replaceChildren(...items);
    changesList.hidden = !items.length;
    const nothing = !flagged.length && !nodes.length;
    changesEmpty.hidden = !nothing;
    changesEmpty.textContent = nothing
      ? `Nothing got slower or started failing more after ${formatStart(compare.at_ns).slice(0, 16)} UTC.`
      : "";
  }

  function markSelected() {
    const id = selectedEdge && `${selectedEdge.source}\u0000${selectedEdge.target}`;
    for (const group of canvas.querySelectorAll(".map-edge")) {
      group.classList.toggle("selected", `${group.dataset.source}\u0000${group.dataset.target}` === id);
    }
  }

  /** (Re)draw the graph to the canvas's width, keeping keyboard focus on the same node or call. */
  function drawCanvas() {
    const active = document.activeElement;
    let refocus = null;
    if (active && canvas.contains(active)) {
      if (active.dataset.edge) refocus = `[data-edge="${CSS.escape(active.dataset.edge)}"]`;
      else if (active.dataset.node) refocus = `[data-node="${CSS.escape(active.dataset.node)}"]`;
    }
    drawnWidth = canvas.clientWidth;
    canvas.replaceChildren(drawMap(result, { onEdge: openEdge, focus: result.focus && result.focus.service, fitWidth: drawnWidth }));
    declutterLabels(canvas);
    if (refocus) canvas.querySelector(refocus)?.focus({ preventScroll: true });
    markSelected();
    // A narrower canvas (the panel opened) may have moved the selected call out of view.
    canvas.querySelector(".map-edge.selected .edge-label")?.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  // The side panel opening or closing, or the window resizing, changes the room for the columns.
  new ResizeObserver(() => {
    if (!result || !result.nodes.length || layoutBox.hidden) return;
    if (Math.abs(canvas.clientWidth - drawnWidth) > 8) drawCanvas();
  }).observe(canvas);

  function render() {
    const seconds = Number(result.lag_seconds) || 0;
    lag.hidden = seconds <= LAG_SHOWN_ABOVE_S;
    lag.textContent = lag.hidden ? "" : `map trails ingest by ${formatSeconds(seconds)}`;
    const services = result.nodes.filter((node) => node.kind === "service").length;
    const others = result.nodes.filter((node) => node.kind !== "service" && node.kind !== "clients").length;
    const now = new Date().toISOString().slice(11, 19);
    summary.textContent = [
      `${services} service${services === 1 ? "" : "s"}`,
      others ? `${others} other endpoint${others === 1 ? "" : "s"}` : "",
      `${result.edges.length} call path${result.edges.length === 1 ? "" : "s"}`,
      `updated ${now} UTC`,
    ]
      .filter(Boolean)
      .join(" \u00b7 ");
    renderChanges();
    if (!result.edges.length) {
      // Services may still show (they had requests), but nothing called anything: say so, and why it may be early.
      const focus = result.focus && result.focus.service;
      showState("empty", focus ? `No calls to or from ${focus} in this window.` : "No calls between services in this window.");
      const hint = seconds > 0
        ? `The map trails ingest by about ${formatSeconds(seconds)}: calls show up once their traces have finished. Try a longer time range.`
        : "Calls show up once their traces have finished. Try a longer time range.";
      state.append(el("span", "hint empty-hint", hint));
    } else {
      state.hidden = true;
      state.dataset.state = "done";
    }
    if (!result.nodes.length) {
      layoutBox.hidden = true;
      edgesCard.hidden = true;
      canvas.replaceChildren();
      root.dataset.rendered = "1";
      return;
    }
    // Shown first, so the canvas has a width to fit the columns into.
    layoutBox.hidden = false;
    drawCanvas();
    edgesCard.hidden = !result.edges.length;
    renderTable();
    root.dataset.rendered = "1";
  }

  // -- the call panel ----------------------------------------------------------------------------------------------

  function closePanel({ refocus = true } = {}) {
    if (edgeController) edgeController.abort();
    const was = selectedEdge;
    selectedEdge = null;
    panel.hidden = true;
    layoutBox.classList.remove("with-panel");
    markSelected();
    if (was && refocus) {
      const group = [...canvas.querySelectorAll(".map-edge")].find((g) => g.dataset.source === was.source && g.dataset.target === was.target);
      group?.focus({ preventScroll: true });
    }
  }

  function renderEdge(detail) {
    document.getElementById("edge-rate").textContent = formatPerMinute(detail.calls_per_minute);
    document.getElementById("edge-calls").textContent = `${Number(detail.calls).toLocaleString("en")} calls`;
    const errors = document.getElementById("edge-errors");
    errors.textContent = formatPercent(detail.error_percent);
    errors.className = errorLevel(detail.error_percent);
    document.getElementById("edge-error-count").textContent = `${Number(detail.errors).toLocaleString("en")} failed`;
    for (const key of ["p50", "p95", "p99"]) document.getElementById(`edge-${key}`).textContent = formatDuration(detail[`${key}_ns`]);
    const gap = document.getElementById("edge-gap");
    gap.replaceChildren();
    if (detail.server_p95_ns !== null && detail.server_p95_ns !== undefined) {
      const difference = Math.max(0, Number(detail.p95_ns) - Number(detail.server_p95_ns));
      gap.append(
        el("span", "", `Client p95 ${formatDuration(detail.p95_ns)} \u00b7 server p95 ${formatDuration(detail.server_p95_ns)} \u00b7 `),
        el("strong", "gap-value", `network/queue gap ${formatDuration(difference)}`),
      );
      gap.title = "Caller-observed minus callee-observed p95: time on the wire, in queues or in retries";
    } else {
      gap.append(el("span", "hint", "Caller-observed latency only: the callee's own spans were not paired with these calls."));
      gap.title = "";
    }
    const examples = [...(detail.examples || [])].sort((a, b) => Number(b.duration_ns) - Number(a.duration_ns));
    document.getElementById("edge-examples").replaceChildren(
      ...examples.map((example) => {
        const item = el("li", example.error ? "error" : "");
        const link = el("a", "example-link", "");
        link.href = tracePath(example.trace_id, example.callee_span_id || example.caller_span_id);
        link.dataset.traceId = example.trace_id;
        link.append(el("span", "duration-text", formatDuration(example.duration_ns)), " ", el("span", "mono trace-id-short", example.trace_id.slice(0, 16)));
        const when = el("span", "sub", formatStart(example.start_ns).slice(5));
        when.title = `${formatStart(example.start_ns)} UTC`;
        item.append(link, " ", when);
        if (example.error) item.append(" ", el("span", "error-count", "error"));
        return item;
      }),
    );
    document.getElementById("edge-examples-empty").hidden = examples.length > 0;
  }

  async function openEdge(edge, { focusPanel = true } = {}) {
    if (edgeController) edgeController.abort();
    edgeController = new AbortController();
    selectedEdge = { source: edge.source, target: edge.target };
    markSelected();
    panel.hidden = false;
    layoutBox.classList.add("with-panel");
    panelTitle.replaceChildren(el("span", "edge-end", edge.source), el("span", "edge-arrow", " \u2192 "), el("span", "edge-end", edge.target));
    panelTitle.setAttribute("tabindex", "-1");
    panelBody.hidden = true;
    renderState(panelState, "loading", "Loading the calls\u2026");
    panel.dataset.state = "loading";
    if (focusPanel) {
      panelTitle.focus({ preventScroll: true });
      panel.scrollIntoView({ block: "nearest" });
    }
    const params = timeParams();
    params.set("source", edge.source);
    params.set("target", edge.target);
    let detail;
    try {
      detail = await getJSON(apiUrl(root.dataset.apiEdge, params), { signal: edgeController.signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      renderState(panelState, "error", error.status === 404 ? "No calls on this path in this window." : `Could not load the calls: ${error.message}`);
      panel.dataset.state = "error";
      return;
    }
    panelState.hidden = true;
    panelBody.hidden = false;
    renderEdge(detail);
    panel.dataset.state = "done";
  }

  document.getElementById("edge-close").addEventListener("click", () => closePanel());
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePanel();
  });

  // -- loading -----------------------------------------------------------------------------------------------------

  async function load({ quiet = false } = {}) {
    if (controller) controller.abort();
    const mine = new AbortController();
    controller = mine;
    const params = new URLSearchParams(window.location.search);
    for (const key of DISPLAY_ONLY) params.delete(key);
    root.setAttribute("aria-busy", "true");
    root.classList.add("loading");
    if (!quiet || !result) showState("loading", "Loading the service map\u2026");
    try {
      result = await getJSON(apiUrl(root.dataset.apiMap, params), { signal: mine.signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (!quiet) {
        result = null;
        layoutBox.hidden = true;
        edgesCard.hidden = true;
        changesCard.hidden = true;
        summary.textContent = "";
      }
      showState("error", `Could not load the service map: ${error.message}`, { retry: true });
      return;
    } finally {
      if (controller === mine) {
        // Not when a newer load took over: that one is still busy.
        root.classList.remove("loading");
        root.removeAttribute("aria-busy");
      }
    }
    lastLoad = Date.now();
    render();
    if (selectedEdge && !quiet) {
      // A new range or filter: the open call's figures are stale. Reload them, or close the panel if it left the map.
      const edge = result.edges.find((e) => e.source === selectedEdge.source && e.target === selectedEdge.target);
      if (edge) openEdge(edge, { focusPanel: false });
      else closePanel({ refocus: false });
    }
    refreshServiceNames();
  }

  bindSortHeaders(table, {
    getState: sortState,
    defaultSort: DEFAULT_SORT,
    firstDescending: (key) => key !== "source" && key !== "target",
    onSort: () => result && renderTable(),
  });

  const syncPicker = bindLookbackPicker(picker, () => load());
  refreshWhileVisible(() => load({ quiet: true }), REFRESH_MS, () => lastLoad);
  syncPicker();
  syncFilters();
  load();
}

main();
