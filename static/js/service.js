// The service page: one service's RED metrics from /api/v1/services/<name>/ as three Plotly charts sharing the
// time axis (rate, error %, latency with exemplar trace markers), its callers and callees (upstream / downstream, with
// a link to the service map around it), a sortable operations table, the slowest traces and the most recent error
// traces. ?lookback= (or start / end) is passed to the API; ?sort= is display-only.
// Service, operation and span names are untrusted: written with textContent, entity-escaped for Plotly labels.

import { bindSortHeaders, markSortedHeader, sortFromUrl, sortRows } from "./sorting.js";
import { el, renderState } from "./ui.js";
import { apiUrl, getJSON } from "./api.js";
import { serviceColor, serviceColorLight } from "./colors.js";
import { formatDuration, formatPercent, formatPerMinute, formatRate } from "./format.js";
import { bindLookbackPicker, refreshWhileVisible } from "./timerange.js";

const REFRESH_MS = 30_000;
const LAG_SHOWN_ABOVE_S = 5;
const ERROR_COLOR = "#c92a2a";
const EXEMPLAR_COLOR = "#1d2330";
const LATENCY_COLORS = { p50_ns: "#74a0f0", p95_ns: "#3559e0", p99_ns: "#8e5cc7" };
const DEFAULT_SORT = "-impact";

/** Escape text for Plotly labels, which interpret <b>, <br>, <a> and friends. */
function plotlyText(text) {
  return String(text ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;");
}

function formatSeconds(seconds) {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** "2026-11-21 11:35:05" (UTC) from nanoseconds since the epoch as a string. */
function formatStart(startNs) {
  const ms = Number(BigInt(startNs) / 1000000n);
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

export function tracePath(traceId, spanId) {
  const path = `/traces/${encodeURIComponent(traceId)}/`;
  return spanId ? `${path}?span=${encodeURIComponent(spanId)}` : path;
}

function isoUtc(epochSeconds) {
  return new Date(epochSeconds * 1000).toISOString().replace("Z", "");
}

// ---------------------------------------------------------------------------------------------------------------
// Operations table

const SORTS = {
  name: (op) => op.name,
  kind: (op) => op.kind,
  rate: (op) => op.requests,
  errors: (op) => op.error_percent,
  p50: (op) => op.p50_ns ?? -1,
  p95: (op) => op.p95_ns ?? -1,
  p99: (op) => op.p99_ns ?? -1,
  impact: (op) => op.total_ns ?? 0,
};

function sortState() {
  return sortFromUrl(SORTS, DEFAULT_SORT);
}

function sorted(operations, sort) {
  return sortRows(operations, SORTS, sort, (a, b) => a.name.localeCompare(b.name));
}

function searchUrl(base, service, operation) {
  const params = new URLSearchParams({ service, operation });
  const current = new URLSearchParams(window.location.search);
  for (const key of ["lookback", "start", "end"]) if (current.get(key)) params.set(key, current.get(key));
  if (!params.get("lookback") && !params.get("start") && !params.get("end")) params.set("lookback", "1h");
  return `${base}?${params}`;
}

function renderOperation(op, { service, searchBase, windowSeconds, maxTotal }) {
  const row = el("tr", op.error_percent > 1 ? "has-error" : "");
  row.dataset.operation = op.name;
  const name = el("td", "op-name");
  const link = el("a", "operation-link", op.name);
  link.href = searchUrl(searchBase, service, op.name);
  link.title = `Search traces of ${op.name}`;
  name.append(link);
  const kind = el("td", "kind", op.kind);
  const rate = el("td", "num rate");
  rate.append(el("span", "value", formatRate(windowSeconds > 0 ? op.requests / windowSeconds : op.rate_per_second)));
  rate.append(el("div", "sub", `${op.requests.toLocaleString("en")} req`));
  const errors = el("td", "num errors");
  errors.append(el("span", op.error_percent > 1 ? "value error-high" : "value", formatPercent(op.error_percent)));
  errors.append(el("div", "sub", `${op.errors.toLocaleString("en")} err`));
  const impact = el("td", "impact");
  const share = maxTotal > 0 ? (op.total_ns || 0) / maxTotal : 0;
  const bar = el("span", "impact-bar");
  const fill = el("span", "fill");
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  bar.append(fill);
  bar.title = `${formatDuration(op.total_ns)} spent in ${op.name}`;
  impact.append(bar);
  row.append(
    name,
    kind,
    rate,
    errors,
    el("td", "num p50", formatDuration(op.p50_ns)),
    el("td", "num p95", formatDuration(op.p95_ns)),
    el("td", "num p99", formatDuration(op.p99_ns)),
    impact,
  );
  return row;
}

// ---------------------------------------------------------------------------------------------------------------
// Neighbours: who calls the service (upstream) and what it calls (downstream), from the service-map edges

const NEIGHBOUR_KIND = { database: "database", messaging: "queue", external: "external", unknown: "unknown", clients: "clients" };

function timeQuery() {
  const current = new URLSearchParams(window.location.search);
  const params = new URLSearchParams();
  for (const key of ["lookback", "start", "end"]) if (current.get(key)) params.set(key, current.get(key));
  return params;
}

function mapPath(base, service) {
  const params = new URLSearchParams({ service, hops: "1" });
  for (const [key, value] of timeQuery()) params.set(key, value);
  return `${base}?${params}`;
}

function renderNeighbour(item) {
  const row = el("tr", item.error_percent > 1 ? "has-error" : "");
  row.dataset.neighbour = item.name;
  row.dataset.kind = item.kind;
  const name = el("td", "endpoint");
  if (item.kind === "service") {
    const link = el("a", "neighbour-link", item.name);
    const query = timeQuery().toString();
    link.href = `/services/${encodeURIComponent(item.name)}/${query ? `?${query}` : ""}`;
    name.append(link);
  } else {
    name.append(el("span", "neighbour-name", item.name), " ", el("span", "kind-tag", NEIGHBOUR_KIND[item.kind] || item.kind));
  }
  if (item.connection && item.connection !== "http/rpc") name.append(el("div", "sub", item.connection));
  const errors = el("td", "num errors");
  errors.append(el("span", item.error_percent > 1 ? "value error-high" : "value", formatPercent(item.error_percent)));
  errors.append(el("div", "sub", `${Number(item.errors).toLocaleString("en")} of ${Number(item.calls).toLocaleString("en")}`));
  row.append(name, el("td", "num rate", formatPerMinute(item.calls_per_minute)), errors, el("td", "num p95", formatDuration(item.p95_ns)));
  return row;
}

function renderNeighbourList(prefix, items) {
  document.getElementById(`${prefix}-body`).replaceChildren(...items.map(renderNeighbour));
  document.getElementById(`${prefix}-table`).hidden = !items.length;
  document.getElementById(`${prefix}-empty`).hidden = items.length > 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Charts

const BASE_LAYOUT = {
  margin: { l: 64, r: 12, t: 6, b: 36 },
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "rgba(0,0,0,0)",
  font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#5d6677" },
  hovermode: "x unified",
  hoverlabel: { bgcolor: "#1d2330", bordercolor: "#1d2330", font: { color: "#ffffff", size: 12 } },
  showlegend: false,
  dragmode: false,
};

function axisX(range) {
  return { type: "date", range, gridcolor: "#eceff4", linecolor: "#dde1e8", zeroline: false, fixedrange: true };
}

function axisY(extra) {
  return { gridcolor: "#eceff4", zeroline: false, rangemode: "tozero", fixedrange: true, ...extra };
}

function plot(container, data, layout) {
  return window.Plotly.react(container, data, { ...BASE_LAYOUT, ...layout }, { displayModeBar: false, responsive: true });
}

/** Draw the three charts; resolves when Plotly has drawn them. */
function renderCharts(result, charts, color) {
  const { series, window: win } = result;
  const x = series.t.map(isoUtc);
  const range = [isoUtc(Number(BigInt(win.start_ns) / 1000000000n)), isoUtc(Number(BigInt(win.end_ns) / 1000000000n))];
  const ms = (values) => values.map((v) => (v === null || v === undefined ? null : v / 1e6));

  const drawn = [];
  drawn.push(plot(
    charts.rate,
    [
      {
        type: "scatter",
        mode: "lines",
        x,
        y: series.rate,
        line: { color, width: 1.6, shape: "hv" },
        fill: "tozeroy",
        fillcolor: `${color}22`,
        hovertemplate: "%{y:.3f} req/s<extra></extra>",
        name: "rate",
      },
    ],
    { height: 150, xaxis: axisX(range), yaxis: axisY({ ticksuffix: "/s" }) },
  ));

  // Bars: a slot without requests has no error % (a gap), which a filled line would bridge.
  const errorValues = series.error_percent.filter((v) => v !== null && v !== undefined);
  drawn.push(plot(
    charts.errors,
    [
      {
        type: "bar",
        x,
        y: series.error_percent,
        marker: { color: ERROR_COLOR, opacity: 0.8 },
        hovertemplate: "%{y:.2f} %<extra></extra>",
        name: "error %",
      },
    ],
    {
      height: 150,
      bargap: 0.15,
      xaxis: axisX(range),
      yaxis: axisY({ ticksuffix: " %", range: [0, Math.max(5, ...errorValues) * 1.1] }),
    },
  ));

  const exemplars = result.exemplars || [];
  const latency = ["p50_ns", "p95_ns", "p99_ns"].map((key) => ({
    type: "scatter",
    mode: "lines+markers", // markers: a lone slot with traffic has no line to draw
    x,
    y: ms(series[key]),
    marker: { size: 4, color: LATENCY_COLORS[key] },
    name: key.slice(0, 3),
    line: { color: LATENCY_COLORS[key], width: key === "p95_ns" ? 2 : 1.4 },
    hovertemplate: `${key.slice(0, 3)} %{y:.1f} ms<extra></extra>`,
  }));
  latency.push({
    type: "scatter",
    mode: "markers",
    name: "exemplars",
    x: exemplars.map((e) => isoUtc(e.t)),
    y: exemplars.map((e) => e.duration_ns / 1e6),
    customdata: exemplars.map((e) => [e.trace_id, e.span_id]),
    text: exemplars.map((e) => `${e.error ? "error " : ""}exemplar ${plotlyText(formatDuration(e.duration_ns))}`),
    hovertemplate: "%{text}<br>click to open the trace<extra></extra>",
    marker: {
      symbol: "diamond",
      size: 9,
      color: exemplars.map((e) => (e.error ? ERROR_COLOR : EXEMPLAR_COLOR)),
      line: { width: 1, color: "#ffffff" },
    },
  });
  drawn.push(plot(charts.latency, latency, {
    height: 220,
    hovermode: "closest",
    showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.12, font: { size: 11 } },
    margin: { ...BASE_LAYOUT.margin, t: 22 },
    xaxis: axisX(range),
    yaxis: axisY({ ticksuffix: " ms" }),
  }));
  return Promise.all(drawn);
}

// ---------------------------------------------------------------------------------------------------------------

function main() {
  const root = document.getElementById("service-page");
  if (!root) return;
  const service = root.dataset.service;
  const state = document.getElementById("service-state");
  const body = document.getElementById("service-body");
  const lag = document.getElementById("service-lag");
  const picker = document.getElementById("range-picker");
  const table = document.getElementById("operations-table");
  const charts = {
    rate: document.getElementById("chart-rate"),
    errors: document.getElementById("chart-errors"),
    latency: document.getElementById("chart-latency"),
  };
  const color = serviceColor(service);
  const title = document.getElementById("service-title");
  title.style.setProperty("--service", color);
  title.style.setProperty("--service-light", serviceColorLight(service));
  let result = null;
  let controller = null;
  let lastLoad = 0;
  let clickBound = false;

  function showState(kind, message, { retry = false } = {}) {
    renderState(state, kind, message, retry ? () => load() : null);
  }

  function windowSeconds() {
    return Number(BigInt(result.window.end_ns) - BigInt(result.window.start_ns)) / 1e9;
  }

  function renderOperations() {
    const sort = sortState();
    markSortedHeader(table, sort);
    const operations = result.operations;
    const context = {
      service,
      searchBase: root.dataset.traceSearch,
      windowSeconds: windowSeconds(),
      maxTotal: Math.max(0, ...operations.map((op) => op.total_ns || 0)),
    };
    document.getElementById("operations-body").replaceChildren(...sorted(operations, sort).map((op) => renderOperation(op, context)));
    table.hidden = !operations.length;
    document.getElementById("operations-empty").hidden = operations.length > 0;
  }

  function renderTotals() {
    const totals = result.totals;
    document.getElementById("total-rate").textContent = formatRate(totals.requests / windowSeconds());
    document.getElementById("total-requests").textContent = `${totals.requests.toLocaleString("en")} requests`;
    const errors = document.getElementById("total-errors");
    errors.textContent = formatPercent(totals.error_percent);
    errors.classList.toggle("error-high", totals.error_percent > 1);
    document.getElementById("total-error-count").textContent = `${totals.errors.toLocaleString("en")} errors`;
    for (const key of ["p50", "p95", "p99"]) {
      document.getElementById(`total-${key}`).textContent = formatDuration(totals[`${key}_ns`]);
    }
    document.getElementById("step-label").textContent = `req/s, per ${formatSeconds(result.window.step_seconds)}`;
  }

  function renderExemplars() {
    const list = document.getElementById("exemplar-list");
    const exemplars = [...(result.exemplars || [])].sort((a, b) => b.t - a.t);
    document.getElementById("exemplar-count").textContent = `(${exemplars.length})`;
    list.replaceChildren(
      ...exemplars.map((e) => {
        const item = el("li", e.error ? "error" : "");
        const link = el("a", "exemplar-link mono", e.trace_id.slice(0, 16));
        link.href = tracePath(e.trace_id, e.span_id);
        link.dataset.traceId = e.trace_id;
        item.append(link, " ", el("span", "duration-text", formatDuration(e.duration_ns)), " ", el("span", "sub", formatStart(e.start_ns)));
        if (e.error) item.append(" ", el("span", "error-count", "error"));
        return item;
      }),
    );
  }

  function renderSlowest() {
    const list = document.getElementById("slowest-list");
    const items = result.slowest_traces || [];
    const longest = Math.max(1, ...items.map((t) => t.duration_ns));
    list.replaceChildren(
      ...items.map((t) => {
        const item = el("li");
        const link = el("a", "slow-link", formatDuration(t.duration_ns));
        link.href = tracePath(t.trace_id, t.span_id);
        link.dataset.traceId = t.trace_id;
        const bar = el("span", "duration-bar");
        const fill = el("span", t.error ? "fill error" : "fill");
        fill.style.width = `${((100 * t.duration_ns) / longest).toFixed(1)}%`;
        bar.append(fill);
        item.append(link, " ", el("span", "sub mono", t.trace_id.slice(0, 16)), " ", el("span", "sub", formatStart(t.start_ns)), bar);
        if (t.error) link.classList.add("error");
        return item;
      }),
    );
    document.getElementById("slowest-empty").hidden = items.length > 0;
  }

  function renderErrors() {
    const traces = result.recent_error_traces || [];
    const rows = traces.map((t) => {
      const row = el("tr", "has-error");
      const cell = el("td");
      const link = el("a", "trace-link error-trace-link");
      link.href = tracePath(t.trace_id);
      if (t.root_service) {
        link.append(el("span", "root-service", t.root_service), el("span", "root-name", t.root_name));
      } else {
        link.append(el("span", "root-missing", "(missing root)"));
      }
      cell.append(link, el("div", "trace-id mono", t.trace_id));
      const start = el("td", "start sub", formatStart(t.start_ns));
      row.append(
        cell,
        start,
        el("td", "num duration-text", formatDuration(t.duration_ns)),
        (() => {
          const td = el("td", "num");
          td.append(el("span", "error-count", String(t.error_count)));
          return td;
        })(),
      );
      return row;
    });
    document.getElementById("errors-body").replaceChildren(...rows);
    document.getElementById("errors-table").hidden = !rows.length;
    document.getElementById("errors-empty").hidden = rows.length > 0;
  }

  function bindChartClicks() {
    if (clickBound || typeof charts.latency.on !== "function") return;
    clickBound = true;
    charts.latency.on("plotly_click", (event) => {
      const points = (event && event.points) || [];
      const point = points.find((p) => Array.isArray(p.customdata));
      if (point) {
        window.location.assign(tracePath(point.customdata[0], point.customdata[1]));
        return;
      }
      // A percentile point (the slowest exemplar often sits on the p99 line): open that slot's nearest exemplar.
      const clicked = points[0];
      if (!clicked || !result) return;
      const slot = result.series.t[clicked.pointIndex];
      const candidates = (result.exemplars || []).filter((e) => e.t === slot);
      if (!candidates.length) return;
      const nearest = candidates.reduce((best, e) =>
        Math.abs(e.duration_ns / 1e6 - clicked.y) < Math.abs(best.duration_ns / 1e6 - clicked.y) ? e : best,
      );
      window.location.assign(tracePath(nearest.trace_id, nearest.span_id));
    });
  }

  function renderNeighbours() {
    renderNeighbourList("upstream", result.upstream);
    renderNeighbourList("downstream", result.downstream);
    const link = document.getElementById("open-in-map");
    link.href = mapPath(new URL(link.href).pathname, service);
  }

  async function render() {
    const seconds = Number(result.lag_seconds) || 0;
    lag.hidden = seconds <= LAG_SHOWN_ABOVE_S;
    lag.textContent = lag.hidden ? "" : `metrics trail ingest by ${formatSeconds(seconds)}`;
    state.hidden = true;
    state.dataset.state = "done";
    body.hidden = false;
    renderTotals();
    renderOperations();
    renderNeighbours();
    renderExemplars();
    renderSlowest();
    renderErrors();
    if (!window.Plotly) {
      for (const chart of Object.values(charts)) chart.replaceChildren(el("p", "hint", "The chart library did not load."));
      return;
    }
    await renderCharts(result, charts, color);
    bindChartClicks();
    if (!result.totals.requests) {
      state.hidden = false;
      state.dataset.state = "empty";
      state.replaceChildren(el("span", "", "No rolled-up traffic for this service in this window. Try a longer time range."));
    }
    root.dataset.rendered = "1";
  }

  async function load({ quiet = false } = {}) {
    if (controller) controller.abort();
    controller = new AbortController();
    const params = new URLSearchParams(window.location.search);
    params.delete("sort");
    root.setAttribute("aria-busy", "true");
    root.classList.add("loading");
    if (!quiet || !result) showState("loading", "Loading…");
    try {
      result = await getJSON(apiUrl(root.dataset.apiService, params), { signal: controller.signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (!quiet) {
        result = null;
        body.hidden = true;
      }
      showState("error", `Could not load ${service}: ${error.message}`, { retry: true });
      return;
    } finally {
      root.classList.remove("loading");
      root.removeAttribute("aria-busy");
    }
    lastLoad = Date.now();
    await render();
  }

  bindSortHeaders(table, {
    getState: sortState,
    defaultSort: DEFAULT_SORT,
    firstDescending: (key) => key !== "name" && key !== "kind",
    onSort: () => result && renderOperations(),
  });

  const syncPicker = bindLookbackPicker(picker, () => load());
  refreshWhileVisible(() => load({ quiet: true }), REFRESH_MS, () => lastLoad);
  syncPicker();
  load();
}

main();
