// The trace search page: autocomplete for the filters, then results from /api/v1/traces as a scatter chart and a
// sortable table. The URL query string is the whole state: the server renders (and validates) the form from it and
// this module fetches with the same query string. Stored data (service, span and attribute names) is only ever
// written with textContent; Plotly text is entity-escaped because Plotly reads a little HTML in labels.

import { bindSortHeaders, markSortedHeader, sortFromUrl, sortRows } from "./sorting.js";
import { el, renderState } from "./ui.js";
import { ApiError, apiUrl, getJSON } from "./api.js";
import { attachAutocomplete } from "./autocomplete.js";
import { serviceChip, serviceColor } from "./colors.js";
import { formatDuration } from "./format.js";

const ERROR_COLOR = "#c92a2a";
const OK_COLOR = "#3559e0";
const MAX_CHIPS = 6;
const ATTR_OPERATOR = /^([^=!<>~]*)(!=|=~|>=|<=|=|>|<)(.*)$/s;
const ATTR_PRESENCE = /^(exists|missing):(.*)$/s;

/** Milliseconds since the epoch from a nanosecond string (int64 does not fit a double exactly; ms does). */
function startMs(trace) {
  return Number(BigInt(trace.start_ns) / 1000000n);
}

function formatClock(ms) {
  return new Date(ms).toISOString().slice(11, 23);
}

function formatDate(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function formatAgo(ms) {
  const seconds = Math.max(0, (Date.now() - ms) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** Escape text for Plotly labels, which interpret <b>, <br>, <a> and friends. Plotly decodes the entities back. */
function plotlyText(text) {
  return String(text ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;");
}

function tracePath(traceId) {
  return `/traces/${encodeURIComponent(traceId)}/`;
}

// ---------------------------------------------------------------------------------------------------------------
// Suggestions (cached per URL for the life of the page: the lists change slowly).

const cache = new Map();
function cachedJSON(url) {
  if (!cache.has(url)) {
    const pending = getJSON(url).catch((error) => {
      cache.delete(url); // retry next time
      throw error;
    });
    cache.set(url, pending);
  }
  return cache.get(url);
}

function rank(items, typed, text = (item) => item.value) {
  const needle = typed.trim().toLowerCase();
  return items
    .filter((item) => text(item).toLowerCase().includes(needle))
    .sort((a, b) => {
      const aStarts = text(a).toLowerCase().startsWith(needle) ? 0 : 1;
      const bStarts = text(b).toLowerCase().startsWith(needle) ? 0 : 1;
      return aStarts - bStarts || text(a).localeCompare(text(b));
    });
}

function setUpAutocomplete(form) {
  const servicesApi = form.dataset.apiServices;
  const attributesApi = form.dataset.apiAttributes;
  const serviceInput = form.querySelector("[data-autocomplete=service]");
  const operationInput = form.querySelector("[data-autocomplete=operation]");
  const currentService = () => serviceInput.value.trim();

  attachAutocomplete(serviceInput, async (typed) => {
    const { services } = await cachedJSON(servicesApi);
    const items = services.map((s) => ({ value: s.name, detail: `${s.operations} op${s.operations === 1 ? "" : "s"}` }));
    return rank(items, typed);
  });

  attachAutocomplete(operationInput, async (typed) => {
    const service = currentService();
    if (!service) return [];
    let operations;
    try {
      ({ operations } = await cachedJSON(`${servicesApi}/${encodeURIComponent(service)}/operations`));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return []; // unknown service: nothing to offer
      throw error;
    }
    const kinds = new Map();
    for (const op of operations) kinds.set(op.name, [...(kinds.get(op.name) || []), op.kind.toLowerCase()]);
    const items = [...kinds].map(([name, list]) => ({ value: name, detail: list.join(", ") }));
    return rank(items, typed);
  });

  async function attrSource(typed) {
    const service = currentService();
    const presence = ATTR_PRESENCE.exec(typed);
    const condition = presence ? null : ATTR_OPERATOR.exec(typed);
    if (!condition) {
      // Still typing the key (possibly after exists: / missing:): suggest keys.
      const prefix = presence ? `${presence[1]}:` : "";
      const partial = (presence ? presence[2] : typed).trim();
      const { keys } = await cachedJSON(apiUrl(attributesApi, { service, prefix: partial }));
      return keys.map((k) => ({
        value: presence ? `${prefix}${k.key}` : `${k.key}=`,
        label: `${prefix}${k.key}`,
        detail: k.sources.includes("span") ? `${k.count}×` : "resource",
        key: !presence,
      }));
    }
    const [, rawKey, op, partial] = condition;
    const key = rawKey.trim();
    if (!key) return [];
    const url = apiUrl(`${attributesApi}/${encodeURIComponent(key)}/values`, { service, prefix: partial });
    const { values } = await cachedJSON(url);
    return values.map((v) => ({
      value: `${key}${op}${v.value}`,
      label: v.value,
      detail: v.type === "string" ? `${v.count}×` : `${v.type} · ${v.count}×`,
    }));
  }

  function attachAttr(input) {
    const handle = attachAutocomplete(input, attrSource, {
      // After a key was picked (`key=`), go straight on to its values.
      onPick: (item) => item.key && handle.refresh(),
    });
  }
  form.querySelectorAll("[data-autocomplete=attr]").forEach(attachAttr);
  return { attachAttr };
}

// ---------------------------------------------------------------------------------------------------------------
// The form: condition rows, time range, clean URLs on submit.

function setUpForm(form, { attachAttr }) {
  const rows = form.querySelector("#attr-rows");

  function newRow() {
    const row = el("div", "attr-row");
    const line = el("div", "input-row");
    const input = document.createElement("input");
    Object.assign(input, { type: "text", name: "attr", placeholder: "http.route=/cart", autocomplete: "off" });
    input.spellcheck = false;
    input.className = "mono";
    input.dataset.autocomplete = "attr";
    input.setAttribute("aria-label", "Attribute condition");
    const remove = el("button", "icon-button", "×");
    remove.type = "button";
    remove.dataset.removeAttr = "";
    remove.title = "Remove condition";
    remove.setAttribute("aria-label", "Remove condition");
    line.append(input, remove);
    row.append(line);
    rows.append(row);
    attachAttr(input);
    return input;
  }

  form.querySelector("#add-attr").addEventListener("click", () => newRow().focus());
  rows.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-attr]");
    if (!button) return;
    const row = button.closest(".attr-row");
    if (rows.querySelectorAll(".attr-row").length > 1) {
      row.remove();
    } else {
      const input = row.querySelector("input");
      input.value = "";
      input.classList.remove("invalid");
      row.querySelector(".field-error")?.remove();
    }
  });

  // A preset clears the absolute range; typing an absolute time switches the select to "Custom".
  const lookback = form.querySelector("#f-lookback");
  const start = form.querySelector("#f-start");
  const end = form.querySelector("#f-end");
  lookback.addEventListener("change", () => {
    if (lookback.value) {
      start.value = "";
      end.value = "";
    }
  });
  for (const input of [start, end]) {
    input.addEventListener("input", () => {
      if (start.value || end.value) lookback.value = "";
    });
  }

  // Submit to a clean URL (no empty parameters), so links pasted into chat stay short and readable.
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (String(value).trim() === "") continue;
      if (key === "lookback" && start.value.trim()) continue; // an absolute start wins over a preset
      params.append(key, value);
    }
    const query = params.toString();
    window.location.assign(`${form.action.split("?")[0]}${query ? `?${query}` : ""}`);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Results.

const SORTS = {
  start: (t) => startMs(t),
  duration: (t) => t.duration_ns,
  spans: (t) => t.span_count,
};

function sortState() {
  return sortFromUrl(SORTS, "-start");
}

function sorted(traces, sort) {
  // Ties keep the API's newest-first order.
  return sortRows(traces, SORTS, sort);
}

function renderRows(body, traces) {
  const maxDuration = Math.max(1, ...traces.map((t) => t.duration_ns));
  const rows = traces.map((trace) => {
    const ms = startMs(trace);
    const row = el("tr", trace.error_count ? "has-error" : "");
    row.dataset.traceId = trace.trace_id;

    const root = el("td", "root");
    const link = el("a", "trace-link");
    link.href = tracePath(trace.trace_id);
    if (trace.root_service) {
      const dot = el("span", "service-dot");
      dot.style.background = serviceColor(trace.root_service);
      link.append(dot, el("span", "root-service", trace.root_service), el("span", "root-name", trace.root_name));
    } else {
      link.append(el("span", "root-missing", "(missing root span)"));
    }
    const id = el("div", "trace-id mono", trace.trace_id.slice(0, 16));
    id.title = trace.trace_id;
    root.append(link, id);

    const start = el("td", "start");
    const clock = el("time", "clock", formatClock(ms));
    clock.dateTime = new Date(ms).toISOString();
    clock.title = `${new Date(ms).toISOString()} (${trace.project})`;
    start.append(clock, el("div", "sub", `${formatDate(ms)} · ${formatAgo(ms)}`));

    const duration = el("td", "duration");
    const bar = el("div", "duration-bar");
    const fill = el("span", trace.error_count ? "fill error" : "fill");
    fill.style.width = `${Math.max(1, (trace.duration_ns / maxDuration) * 100).toFixed(2)}%`;
    bar.append(fill);
    duration.append(el("span", "duration-text", formatDuration(trace.duration_ns)), bar);

    const errors = el("td", "num");
    if (trace.error_count) errors.append(el("span", "error-count", String(trace.error_count)));
    else errors.append(el("span", "zero", "0"));

    const services = el("td", "services");
    trace.services.slice(0, MAX_CHIPS).forEach((name) => services.append(serviceChip(name)));
    if (trace.services.length > MAX_CHIPS) {
      const more = el("span", "chip more", `+${trace.services.length - MAX_CHIPS}`);
      more.title = trace.services.slice(MAX_CHIPS).join(", ");
      services.append(more);
    }

    row.append(root, start, duration, el("td", "num", String(trace.span_count)), errors, services);
    return row;
  });
  body.replaceChildren(...rows);
}

function renderChart(container, traces, onSelectRange) {
  if (!window.Plotly) {
    container.replaceChildren(el("p", "hint", "The chart library did not load."));
    return;
  }
  const sizes = traces.map((t) => Math.min(30, 7 + 3 * Math.sqrt(t.span_count)));
  const data = [
    {
      type: "scatter",
      mode: "markers",
      x: traces.map((t) => new Date(startMs(t)).toISOString().replace("Z", "")),
      y: traces.map((t) => t.duration_ns / 1e6),
      customdata: traces.map((t) => t.trace_id),
      text: traces.map((t) => {
        const name = t.root_service ? `<b>${plotlyText(t.root_service)}</b> ${plotlyText(t.root_name)}` : "(missing root)";
        const errors = t.error_count ? ` · <span style="color:${ERROR_COLOR}">${t.error_count} errors</span>` : "";
        return `${name}<br>${formatDuration(t.duration_ns)} · ${t.span_count} spans${errors}<br>${formatClock(startMs(t))}`;
      }),
      hovertemplate: "%{text}<extra></extra>",
      marker: {
        size: sizes,
        color: traces.map((t) => (t.error_count ? ERROR_COLOR : OK_COLOR)),
        opacity: 0.72,
        line: { width: 1, color: "#ffffff" },
      },
    },
  ];
  const layout = {
    height: 230,
    margin: { l: 64, r: 12, t: 6, b: 34 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: "#5d6677" },
    xaxis: { type: "date", gridcolor: "#eceff4", linecolor: "#dde1e8", zeroline: false, fixedrange: true },
    yaxis: {
      title: { text: "duration", standoff: 6 },
      ticksuffix: " ms",
      gridcolor: "#eceff4",
      zeroline: false,
      rangemode: "tozero",
      fixedrange: true,
    },
    dragmode: "select",
    selectdirection: "h",
    hovermode: "closest",
    hoverlabel: { bgcolor: "#1d2330", bordercolor: "#1d2330", font: { color: "#ffffff", size: 12 } },
    showlegend: false,
  };
  window.Plotly.purge(container);
  window.Plotly.newPlot(container, data, layout, { displayModeBar: false, responsive: true }).then(() => {
    container.on("plotly_click", (event) => {
      const point = event && event.points && event.points[0];
      if (point && point.customdata) window.location.assign(tracePath(point.customdata));
    });
    container.on("plotly_selected", (event) => {
      const range = event && event.range && event.range.x;
      if (range) onSelectRange(range);
    });
  });
}

/** A Plotly date-axis value ("2026-01-31 09:00:12.345", UTC wall time here) as an ISO 8601 UTC string. */
function plotlyDateToIso(value) {
  if (typeof value === "number") return new Date(value).toISOString();
  const text = String(value).trim().replace(" ", "T");
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`).toISOString();
}

function setUpResults(form) {
  const section = document.getElementById("search-results");
  const state = document.getElementById("results-state");
  const table = document.getElementById("results-table");
  const body = document.getElementById("results-body");
  const chart = document.getElementById("scatter");
  const summary = document.getElementById("results-summary");
  let traces = [];
  let controller = null;

  function showState(kind, message, { retry = false } = {}) {
    renderState(state, kind, message, retry ? run : null);
  }

  function renderTable() {
    const sort = sortState();
    markSortedHeader(table, sort);
    renderRows(body, sorted(traces, sort));
  }

  bindSortHeaders(table, {
    getState: sortState,
    defaultSort: "-start",
    // First click on a column sorts biggest / newest first.
    firstDescending: () => true,
    onSort: (params) => {
      const hidden = form.querySelector("input[type=hidden][name=sort]");
      if (hidden) hidden.value = params.get("sort") || "";
      renderTable();
    },
  });

  // A row is a big click target for its trace; the link inside still works for middle-click / copy.
  body.addEventListener("click", (event) => {
    if (event.target.closest("a") || window.getSelection().toString()) return;
    const row = event.target.closest("tr[data-trace-id]");
    if (row) window.location.assign(tracePath(row.dataset.traceId));
  });

  function selectRange([from, to]) {
    let start = plotlyDateToIso(from);
    let end = plotlyDateToIso(to);
    if (start > end) [start, end] = [end, start];
    if (start === end) return;
    const params = new URLSearchParams(window.location.search);
    params.set("start", start);
    params.set("end", end);
    params.delete("lookback");
    history.pushState(null, "", `?${params}`);
    form.querySelector("#f-start").value = start;
    form.querySelector("#f-end").value = end;
    form.querySelector("#f-lookback").value = "";
    run();
  }

  async function run() {
    if (controller) controller.abort();
    controller = new AbortController();
    const params = new URLSearchParams(window.location.search);
    params.delete("sort"); // display-only
    const limit = Number(params.get("limit")) || 20;
    section.setAttribute("aria-busy", "true");
    section.classList.add("loading");
    showState("loading", "Searching…");
    try {
      const result = await getJSON(apiUrl(form.dataset.apiTraces, params), { signal: controller.signal });
      traces = result.traces;
    } catch (error) {
      if (error.name === "AbortError") return;
      traces = [];
      table.hidden = true;
      summary.textContent = "";
      renderChart(chart, [], selectRange);
      showState("error", `Search failed: ${error.message}`, { retry: true });
      return;
    } finally {
      section.classList.remove("loading");
      section.removeAttribute("aria-busy");
    }
    const count = traces.length;
    summary.textContent =
      `${count} trace${count === 1 ? "" : "s"}` + (count >= limit ? ` · newest ${limit} shown, raise the limit or narrow the search` : "");
    renderChart(chart, traces, selectRange);
    if (!count) {
      table.hidden = true;
      showState("empty", "No traces match these filters in this time range. Try a longer time range or fewer conditions.");
      return;
    }
    state.hidden = true;
    state.dataset.state = "done";
    table.hidden = false;
    renderTable();
  }

  return { run };
}

// ---------------------------------------------------------------------------------------------------------------

function main() {
  const form = document.getElementById("search-form");
  if (!form) return;
  const autocomplete = setUpAutocomplete(form);
  setUpForm(form, autocomplete);
  const results = setUpResults(form);
  // Box-select pushes history entries; going back re-renders the page for that URL (the server re-validates it).
  window.addEventListener("popstate", () => window.location.reload());
  if (form.dataset.valid === "1") results.run();
}

main();
