// The services page: RED metrics per service from /api/v1/services/ as a sortable table with sparklines.
// The URL holds the state: ?lookback= (or start / end) is passed to the API, ?sort= is display-only. Service names
// are untrusted and only ever written with textContent.

import { bindSortHeaders, markSortedHeader, sortFromUrl, sortRows } from "./sorting.js";
import { el, renderState } from "./ui.js";
import { apiUrl, getJSON } from "./api.js";
import { serviceColor, serviceColorLight } from "./colors.js";
import { formatDuration, formatPercent, formatRate } from "./format.js";
import { sparkline } from "./sparkline.js";
import { bindLookbackPicker, refreshWhileVisible } from "./timerange.js";

const REFRESH_MS = 30_000;
const LAG_SHOWN_ABOVE_S = 5;
const ERROR_COLOR = "#c92a2a";
const P95_COLOR = "#5c6f82";
const DEFAULT_SORT = "-rate";

function formatSeconds(seconds) {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

const SORTS = {
  name: (s) => s.name,
  rate: (s) => s.requests, // same window for every service
  errors: (s) => s.error_percent,
  p50: (s) => s.p50_ns ?? -1,
  p95: (s) => s.p95_ns ?? -1,
  p99: (s) => s.p99_ns ?? -1,
};

function sortState() {
  return sortFromUrl(SORTS, DEFAULT_SORT);
}

function sorted(services, sort) {
  return sortRows(services, SORTS, sort, (a, b) => a.name.localeCompare(b.name));
}

function servicePath(name) {
  return `/services/${encodeURIComponent(name)}/`;
}

/** The "Service map" link opens the map over the same time range. */
function keepRangeOnMapLink(params) {
  const link = document.getElementById("service-map-link");
  if (!link) return;
  const range = new URLSearchParams();
  for (const key of ["lookback", "start", "end"]) if (params.get(key)) range.set(key, params.get(key));
  const query = range.toString();
  link.href = link.pathname + (query ? `?${query}` : "");
}

function renderRow(service, step, windowSeconds) {
  const row = el("tr", service.error_percent > 1 ? "has-error" : "");
  row.dataset.service = service.name;

  const nameCell = el("td", "service-name");
  const link = el("a", "service-link");
  link.href = servicePath(service.name);
  const chip = el("span", "chip service-chip", service.name);
  chip.title = service.name;
  chip.style.setProperty("--service", serviceColor(service.name));
  chip.style.setProperty("--service-light", serviceColorLight(service.name));
  link.append(chip);
  nameCell.append(link);
  if (service.measured_on && service.measured_on !== "entry spans") {
    const note = el("div", "sub", `measured on ${service.measured_on}`);
    note.title = "No SERVER or CONSUMER spans: every span of the service counts as a request";
    nameCell.append(note);
  }

  const rate = el("td", "num rate");
  // From the count: the API rounds rate_per_second to 3 decimals, too coarse for req/min.
  const perSecond = windowSeconds > 0 ? service.requests / windowSeconds : service.rate_per_second;
  rate.append(el("span", "value", formatRate(perSecond)));
  rate.append(el("div", "sub requests", `${service.requests.toLocaleString("en")} req`));

  const stepLabel = `per ${formatSeconds(step)}`;
  const rateSpark = el("td", "spark");
  rateSpark.append(
    sparkline(service.series.rate, { color: serviceColor(service.name), title: `${service.name}: req/s, ${stepLabel}` }),
  );

  const errors = el("td", "num errors");
  errors.append(el("span", service.error_percent > 1 ? "value error-high" : "value", formatPercent(service.error_percent)));
  errors.append(el("div", "sub", `${service.errors.toLocaleString("en")} err`));

  const errorSpark = el("td", "spark");
  errorSpark.append(
    sparkline(service.series.error_percent, { color: ERROR_COLOR, max: 5, title: `${service.name}: error %, ${stepLabel}` }),
  );

  const p50 = el("td", "num p50", formatDuration(service.p50_ns));
  const p95 = el("td", "num p95", formatDuration(service.p95_ns));
  const p99 = el("td", "num p99", formatDuration(service.p99_ns));

  const p95Spark = el("td", "spark");
  p95Spark.append(sparkline(service.series.p95_ns, { color: P95_COLOR, title: `${service.name}: p95, ${stepLabel}` }));

  row.append(nameCell, rate, rateSpark, errors, errorSpark, p50, p95, p99, p95Spark);
  return row;
}

function main() {
  const root = document.getElementById("services-page");
  if (!root) return;
  const state = document.getElementById("services-state");
  const table = document.getElementById("services-table");
  const body = document.getElementById("services-body");
  const summary = document.getElementById("services-summary");
  const lag = document.getElementById("services-lag");
  const picker = document.getElementById("range-picker");
  let result = null;
  let controller = null;
  let lastLoad = 0;

  function showState(kind, message, { retry = false } = {}) {
    renderState(state, kind, message, retry ? () => load() : null);
  }

  function renderTable() {
    const sort = sortState();
    markSortedHeader(table, sort);
    const { step_seconds: step, start_ns: start, end_ns: end } = result.window;
    const windowSeconds = Number(BigInt(end) - BigInt(start)) / 1e9;
    body.replaceChildren(...sorted(result.services, sort).map((service) => renderRow(service, step, windowSeconds)));
  }

  function render() {
    const services = result.services;
    const seconds = Number(result.lag_seconds) || 0;
    lag.hidden = seconds <= LAG_SHOWN_ABOVE_S;
    lag.textContent = lag.hidden ? "" : `metrics trail ingest by ${formatSeconds(seconds)}`;
    const now = new Date().toISOString().slice(11, 19);
    summary.textContent = `${services.length} service${services.length === 1 ? "" : "s"} · updated ${now} UTC`;
    if (!services.length) {
      table.hidden = true;
      body.replaceChildren();
      showState("empty", "No rolled-up traffic in this window. Try a longer time range.");
      return;
    }
    state.hidden = true;
    state.dataset.state = "done";
    table.hidden = false;
    renderTable();
  }

  async function load({ quiet = false } = {}) {
    if (controller) controller.abort();
    controller = new AbortController();
    const params = new URLSearchParams(window.location.search);
    params.delete("sort"); // display-only
    keepRangeOnMapLink(params);
    root.setAttribute("aria-busy", "true");
    root.classList.add("loading");
    if (!quiet || !result) {
      showState("loading", "Loading services…");
      state.dataset.state = "loading";
    }
    try {
      result = await getJSON(apiUrl(root.dataset.apiServices, params), { signal: controller.signal });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (!quiet) {
        result = null;
        table.hidden = true;
        summary.textContent = "";
      }
      showState("error", `Could not load services: ${error.message}`, { retry: true });
      return;
    } finally {
      root.classList.remove("loading");
      root.removeAttribute("aria-busy");
    }
    lastLoad = Date.now();
    render();
  }

  bindSortHeaders(table, {
    getState: sortState,
    defaultSort: DEFAULT_SORT,
    // Biggest first, names A to Z.
    firstDescending: (key) => key !== "name",
    onSort: () => result && renderTable(),
  });

  const syncPicker = bindLookbackPicker(picker, () => load());
  // Auto-refresh while the page is visible; catch up at once when it becomes visible again.
  refreshWhileVisible(() => load({ quiet: true }), REFRESH_MS, () => lastLoad);
  syncPicker();
  load();
}

main();
