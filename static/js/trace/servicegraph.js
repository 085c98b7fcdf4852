// Services view: the services one trace touched and the calls between them (GET .../service-graph), drawn as a
// small left-to-right layered graph. "clients" (callers of root spans) sits at the left; databases, queues and
// external endpoints that were only seen from a client span are virtual nodes, drawn dashed. Every name comes from
// span data and is untrusted: the SVG is built with DOM APIs and names only ever land in textContent.
//
// The viewer (viewer.js) owns the other tabs; addServiceGraphTab() adds this one next to them from the outside, so
// the upload page, which has no stored trace to ask the API about, simply does not get it.

import { getJSON } from "../api.js";
import { serviceColor, serviceColorLight } from "../colors.js";
import { clear, h } from "./dom.js";
import { fmtCount, fmtDuration } from "./format.js";
import { svg, svgText, tooltip } from "../svg.js";

const NODE_W = 180;
const NODE_H = 42;
const COL_GAP = 130; // room between columns for the edge labels
const ROW_GAP = 26;
const PAD = 24;
const MAX_LABEL = 20; // characters of a name shown in a node; the full name is in its tooltip

const KIND_LABEL = {
  clients: "clients",
  database: "database",
  messaging: "queue",
  external: "external",
  unknown: "uninstrumented",
};


function shorten(name) {
  const text = String(name);
  return text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}\u2026` : text;
}

/**
 * Column (layer) and row of every node: longest path from the sources over the graph without its back edges (found
 * by a depth-first walk, so cycles cannot loop), "clients" in column 0; rows ordered by the mean row of the callers.
 */
export function layout(graph) {
  const ids = graph.nodes.map((node) => node.id);
  const out = new Map(ids.map((id) => [id, []]));
  const incoming = new Map(ids.map((id) => [id, 0]));
  for (const edge of graph.edges) {
    if (!out.has(edge.source) || !out.has(edge.target) || edge.source === edge.target) continue;
    out.get(edge.source).push(edge.target);
    incoming.set(edge.target, incoming.get(edge.target) + 1);
  }
  const kind = new Map(graph.nodes.map((node) => [node.id, node.kind]));
  const roots = ids.filter((id) => kind.get(id) === "clients" || incoming.get(id) === 0);
  const state = new Map(); // 1 on the stack, 2 done
  const forward = [];
  const walk = (start) => {
    const stack = [[start, 0]];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const targets = out.get(top[0]);
      if (top[1] >= targets.length) {
        state.set(top[0], 2);
        stack.pop();
        continue;
      }
      const next = targets[top[1]];
      top[1] += 1;
      if (state.get(next) === 1) continue; // a back edge: drawn, but not used for layering
      forward.push([top[0], next]);
      if (!state.has(next)) {
        state.set(next, 1);
        stack.push([next, 0]);
      }
    }
  };
  for (const id of [...roots, ...ids]) if (!state.has(id)) walk(id);
  const column = new Map(ids.map((id) => [id, 0]));
  for (let round = 0; round < ids.length; round += 1) {
    let changed = false;
    for (const [source, target] of forward) {
      if (column.get(target) < column.get(source) + 1) {
        column.set(target, column.get(source) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  // Nothing but "clients" in column 0 when it exists: services without callers move one column right.
  if (ids.some((id) => kind.get(id) === "clients")) {
    for (const id of ids) if (kind.get(id) !== "clients" && column.get(id) === 0) column.set(id, 1);
  }
  const columns = [];
  for (const id of ids) {
    const c = column.get(id);
    while (columns.length <= c) columns.push([]);
    columns[c].push(id);
  }
  const row = new Map();
  const callers = new Map(ids.map((id) => [id, []]));
  for (const [source, target] of forward) callers.get(target).push(source);
  columns.forEach((members, c) => {
    if (c > 0) {
      const weight = (id) => {
        const rows = callers.get(id).filter((s) => row.has(s)).map((s) => row.get(s));
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Infinity;
      };
      const weights = new Map(members.map((id) => [id, weight(id)]));
      members.sort((a, b) => weights.get(a) - weights.get(b) || ids.indexOf(a) - ids.indexOf(b));
    }
    members.forEach((id, r) => row.set(id, r));
  });
  return { column, row, columns };
}

function edgeTooltip(edge) {
  const errors = edge.errors ? `, ${fmtCount(edge.errors)} failed` : "";
  return `${edge.source} \u2192 ${edge.target}: ${fmtCount(edge.calls)} call${edge.calls === 1 ? "" : "s"}${errors}\n${edge.connection} \u00b7 p50 ${fmtDuration(edge.p50_ns)} \u00b7 p95 ${fmtDuration(edge.p95_ns)}`;
}

function nodeTooltip(node) {
  const what = node.kind === "service" ? "service" : KIND_LABEL[node.kind] || node.kind;
  return `${node.name} (${what})\n${fmtCount(node.calls_in)} calls in \u00b7 ${fmtCount(node.calls_out)} out${node.errors ? ` \u00b7 ${fmtCount(node.errors)} failed` : ""}`;
}

/** Draw the graph into `root`; `onFind(service)` is offered for instrumented services. */
export function renderServiceGraph(root, graph, { onFind } = {}) {
  clear(root);
  const counts = graph.counts || {};
  const services = graph.nodes.filter((node) => node.kind === "service").length;
  const virtual = graph.nodes.filter((node) => !["service", "clients"].includes(node.kind)).length;
  const calls = graph.edges.reduce((sum, edge) => sum + edge.calls, 0);
  const parts = [
    `${fmtCount(services)} service${services === 1 ? "" : "s"}`,
    virtual ? `${fmtCount(virtual)} uninstrumented endpoint${virtual === 1 ? "" : "s"}` : "",
    `${fmtCount(calls)} call${calls === 1 ? "" : "s"}`,
    counts.parent_child ? `${fmtCount(counts.parent_child)} inferred from parent-child` : "",
    counts.unpaired ? `${fmtCount(counts.unpaired)} unpaired` : "",
  ].filter(Boolean);
  root.append(h("p", { class: "tv-note sg-summary", text: `${parts.join(" \u00b7 ")} \u00b7 click a node for details` }));
  if (!graph.nodes.length) {
    root.append(h("p", { class: "tv-note", text: "No services in this trace." }));
    return;
  }

  const { column, row, columns } = layout(graph);
  const height = Math.max(...columns.map((members) => members.length)) * (NODE_H + ROW_GAP) - ROW_GAP + 2 * PAD;
  const width = columns.length * (NODE_W + COL_GAP) - COL_GAP + 2 * PAD;
  const pos = new Map();
  columns.forEach((members, c) => {
    // Each column is centred vertically, so short columns sit level with the middle of tall ones.
    const top = (height - (members.length * (NODE_H + ROW_GAP) - ROW_GAP)) / 2;
    for (const id of members) pos.set(id, { x: PAD + c * (NODE_W + COL_GAP), y: top + row.get(id) * (NODE_H + ROW_GAP) });
  });

  const markerId = "sg-arrow";
  const chart = svg(
    "svg",
    { class: "sg-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Service graph" },
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: markerId, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "sg-arrowhead" }),
      ),
    ),
  );
  const edgeLayer = svg("g", { class: "sg-edges" });
  const labelLayer = svg("g", { class: "sg-labels" });
  const nodeLayer = svg("g", { class: "sg-nodes" });
  chart.append(edgeLayer, nodeLayer, labelLayer);

  const fanOut = new Map();
  const fanIn = new Map();
  for (const edge of graph.edges) {
    fanOut.set(edge.source, (fanOut.get(edge.source) || 0) + 1);
    fanIn.set(edge.target, (fanIn.get(edge.target) || 0) + 1);
  }
  for (const edge of graph.edges) {
    const a = pos.get(edge.source);
    const b = pos.get(edge.target);
    if (!a || !b) continue;
    let d;
    let lx;
    let ly;
    if (edge.source === edge.target) {
      // A service calling itself through another process: a loop over the node.
      const x = a.x + NODE_W / 2;
      d = `M${x - 20},${a.y} C${x - 40},${a.y - 40} ${x + 40},${a.y - 40} ${x + 20},${a.y}`;
      lx = x;
      ly = a.y - 34;
    } else {
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x;
      const y2 = b.y + NODE_H / 2;
      const bend = Math.max(40, Math.abs(x2 - x1) / 2);
      d = `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
      // Labels go on the curve where edges spread out: near the callee for a fan-out, near the caller for a fan-in.
      const t = (fanOut.get(edge.source) || 0) >= (fanIn.get(edge.target) || 0) ? 0.62 : 0.38;
      const u = 1 - t;
      lx = u * u * u * x1 + 3 * u * u * t * (x1 + bend) + 3 * u * t * t * (x2 - bend) + t * t * t * x2;
      ly = u * u * u * y1 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y2 - 5;
    }
    const group = svg(
      "g",
      { class: `sg-edge sg-conn-${edge.connection.replace(/[^a-z]/g, "-")}${edge.errors ? " has-errors" : ""}`, "data-source": edge.source, "data-target": edge.target },
      tooltip(edgeTooltip(edge)),
      svg("path", { d, "marker-end": `url(#${markerId})` }),
    );
    edgeLayer.append(group);
    const label = svg("text", { class: "sg-edge-label", x: lx, y: ly, "text-anchor": "middle" });
    const count = svg("tspan", { class: "sg-calls" });
    count.textContent = `${fmtCount(edge.calls)}\u00d7`;
    label.append(count);
    if (edge.errors) {
      const errors = svg("tspan", { class: "sg-errors", dx: 4 });
      errors.textContent = `${fmtCount(edge.errors)} err`;
      label.append(errors);
    }
    label.append(tooltip(edgeTooltip(edge)));
    labelLayer.append(label);
  }

  const info = h("div", { class: "sg-info", hidden: true, attrs: { role: "status" } });
  let selected = null;
  const select = (node, el) => {
    if (selected) selected.classList.remove("selected");
    for (const edge of edgeLayer.children) {
      const linked = node && (edge.dataset.source === node.id || edge.dataset.target === node.id);
      edge.classList.toggle("linked", Boolean(linked));
      edge.classList.toggle("dimmed", Boolean(node) && !linked);
    }
    selected = el;
    if (!node) {
      info.hidden = true;
      return;
    }
    el.classList.add("selected");
    clear(info);
    const what = node.kind === "service" ? "service" : KIND_LABEL[node.kind] || node.kind;
    info.append(
      h("strong", { class: "sg-info-name", text: node.name }),
      h("span", { class: "muted", text: ` ${what}` }),
      h("span", { text: ` \u00b7 ${fmtCount(node.calls_in)} calls in \u00b7 ${fmtCount(node.calls_out)} out` }),
      node.errors ? h("span", { class: "sg-info-errors", text: ` \u00b7 ${fmtCount(node.errors)} failed` }) : null,
      node.kind === "service" && onFind
        ? h("button", { type: "button", class: "linklike sg-find", text: "Find its spans in the waterfall", on: { click: () => onFind(node.name) } })
        : null,
      h("button", { type: "button", class: "linklike sg-close", text: "Close", on: { click: () => select(null, null) } }),
    );
    info.hidden = false;
  };

  for (const node of graph.nodes) {
    const p = pos.get(node.id);
    const isService = node.kind === "service";
    const el = svg("g", {
      class: `sg-node sg-kind-${node.kind}${node.errors ? " has-errors" : ""}`,
      transform: `translate(${p.x},${p.y})`,
      tabindex: 0,
      role: "button",
      "data-node": node.id,
      "aria-label": `${node.name}: ${fmtCount(node.calls_in)} calls in, ${fmtCount(node.calls_out)} out`,
    });
    el.append(tooltip(nodeTooltip(node)));
    const box = svg("rect", { class: "sg-box", width: NODE_W, height: NODE_H, rx: node.kind === "clients" ? NODE_H / 2 : 6 });
    if (isService) {
      box.style.fill = serviceColorLight(node.name);
      box.style.stroke = serviceColor(node.name);
      el.append(box, svg("rect", { class: "sg-bar", width: 5, height: NODE_H, rx: 2, style: `fill:${serviceColor(node.name)}` }));
    } else {
      el.append(box);
    }
    if (!isService && KIND_LABEL[node.kind] && node.kind !== "clients") {
      el.append(svgText(KIND_LABEL[node.kind], { class: "sg-kind", x: 12, y: 14 }));
      el.append(svgText(shorten(node.name), { class: "sg-name", x: 12, y: 31 }));
    } else {
      el.append(svgText(shorten(node.name), { class: "sg-name", x: isService ? 14 : NODE_W / 2, y: NODE_H / 2 + 4, "text-anchor": isService ? "start" : "middle" }));
    }
    el.addEventListener("click", () => select(selected === el ? null : node, selected === el ? null : el));
    el.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(node, el);
      }
    });
    nodeLayer.append(el);
  }
  root.append(info, h("div", { class: "sg-canvas" }, chart));
}

/**
 * Add a "Services" tab to a mounted viewer. `viewerRoot` is the element mountViewer() filled; `url` the
 * service-graph endpoint; `findSpans(text)` runs the viewer's find (optional); `show` opens the tab at once (the
 * page read ?view=services before the viewer dropped it). The graph is fetched on first view.
 */
export function addServiceGraphTab(viewerRoot, { url, findSpans, show: showNow = false } = {}) {
  const tablist = viewerRoot.querySelector(".tv-tabs");
  const others = [...viewerRoot.querySelectorAll(":scope > .tv-panel")];
  if (!tablist || !others.length || !url) return null;
  const button = h("button", {
    type: "button",
    class: "tv-tab",
    id: "tv-tab-services",
    text: "Services",
    attrs: { role: "tab", "aria-controls": "tv-panel-services", "aria-selected": "false" },
  });
  const panel = h("div", {
    class: "tv-panel tv-panel-services",
    id: "tv-panel-services",
    hidden: true,
    attrs: { role: "tabpanel", "aria-labelledby": "tv-tab-services" },
  });
  tablist.append(button);
  others[others.length - 1].after(panel);

  let loaded = false;
  const setView = (value) => {
    const current = new URL(window.location.href);
    if (value) current.searchParams.set("view", value);
    else current.searchParams.delete("view");
    window.history.replaceState(window.history.state, "", current);
  };
  const fit = () => {
    if (panel.hidden) return;
    const top = panel.getBoundingClientRect().top + window.scrollY;
    panel.style.height = `${Math.max(360, window.innerHeight - top - 12)}px`;
  };
  const load = async () => {
    loaded = true;
    panel.append(h("div", { class: "trace-loading", attrs: { role: "status" } }, h("span", { class: "spinner", attrs: { "aria-hidden": "true" } }), " Loading the service graph\u2026"));
    try {
      const graph = await getJSON(url);
      renderServiceGraph(panel, graph, { onFind: findSpans });
    } catch (error) {
      loaded = false; // let the next visit try again
      clear(panel);
      panel.append(h("div", { class: "tv-error", attrs: { role: "alert" } }, h("strong", { text: "The service graph could not be loaded. " }), h("span", { text: error.message })));
    }
  };
  const show = () => {
    for (const tab of tablist.querySelectorAll(".tv-tab")) {
      tab.setAttribute("aria-selected", tab === button ? "true" : "false");
      tab.classList.toggle("active", tab === button);
    }
    for (const other of others) other.hidden = true;
    panel.hidden = false;
    setView("services");
    fit();
    if (!loaded) load();
  };
  const hide = () => {
    panel.hidden = true;
    button.setAttribute("aria-selected", "false");
    button.classList.remove("active");
  };
  button.addEventListener("click", show);
  // The viewer shows its own tabs (clicks, find, "jump to span") without knowing this one: when one of its panels
  // becomes visible, this panel steps aside.
  const observer = new MutationObserver(() => {
    if (!panel.hidden && others.some((other) => !other.hidden)) hide();
  });
  for (const other of others) observer.observe(other, { attributes: true, attributeFilter: ["hidden"] });
  window.addEventListener("resize", fit);
  if (showNow) show();
  return { show, hide, panel, button };
}
