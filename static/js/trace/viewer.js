// The trace viewer: toolbar (find, critical path, clock skew, expand/collapse, zoom), minimap, tabs (waterfall with
// details panel, statistics, flame graph, repeated spans). Shared by the trace page and the upload page.

import { renderDetails } from "./details.js";
import { clear, h } from "./dom.js";
import { findMatches, parseFind } from "./find.js";
import { FlameGraph } from "./flame.js";
import { fmtCount, fmtDuration } from "./format.js";
import { Minimap } from "./minimap.js";
import { applyAnalysis, buildModel } from "./model.js";
import { renderRepeated } from "./repeated.js";
import { renderStats } from "./stats.js";
import { Waterfall } from "./waterfall.js";

const TABS = [
  ["waterfall", "Waterfall"],
  ["stats", "Statistics"],
  ["flame", "Flame graph"],
  ["repeated", "Repeated spans"],
];

function urlParams() {
  return new URL(window.location.href).searchParams;
}

/**
 * Mount the viewer into `root`.
 * options: {doc, analysis, traceId, loadAnalysis(adjust) -> Promise<analysis>, urlSync (bool),
 *           checkTrace(traceId) -> Promise<bool>, onReady(model)}
 */
export function mountViewer(root, options) {
  const { doc, traceId, urlSync } = options;
  const initial = urlSync ? urlParams() : new URLSearchParams();
  const model = buildModel(doc, options.analysis);
  clear(root);
  root.classList.add("tv");

  const setParam = (key, value) => {
    if (!urlSync) return;
    const url = new URL(window.location.href);
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
    window.history.replaceState(window.history.state, "", url);
  };

  // ---------------------------------------------------------------------------------------------- toolbar
  const findInput = h("input", {
    type: "search",
    class: "tv-find",
    placeholder: "Find: name, service, attribute, key=value, -exclude  ( / )",
    value: initial.get("find") || "",
    attrs: { "aria-label": "Find spans", autocomplete: "off", spellcheck: "false" },
  });
  const findCount = h("span", { class: "tv-find-count", attrs: { "aria-live": "polite" } });
  const prevButton = h("button", { type: "button", class: "tv-btn icon", text: "\u25b2", title: "Previous match (Shift+Enter)", attrs: { "aria-label": "Previous match" } });
  const nextButton = h("button", { type: "button", class: "tv-btn icon", text: "\u25bc", title: "Next match (Enter)", attrs: { "aria-label": "Next match" } });
  const criticalBox = h("input", { type: "checkbox", id: "tv-critical-only" });
  const skewBox = h("input", { type: "checkbox", id: "tv-adjust-skew", checked: initial.get("raw") !== "1" });
  const skewNote = h("span", { class: "tv-skew-note" });
  const expandButton = h("button", { type: "button", class: "tv-btn", text: "Expand all" });
  const collapseButton = h("button", { type: "button", class: "tv-btn", text: "Collapse all" });
  const zoomButton = h("button", { type: "button", class: "tv-btn", text: "Reset zoom", hidden: true });
  const status = h("span", { class: "tv-status", attrs: { role: "status" } });
  const toolbar = h(
    "div",
    { class: "tv-toolbar" },
    h("div", { class: "tv-find-group" }, findInput, findCount, prevButton, nextButton),
    h("label", { class: "tv-check", title: "Show only the spans on the critical path" }, criticalBox, " Critical path only"),
    h(
      "label",
      { class: "tv-check", title: "Shift spans whose host clock disagrees with their parent's (off: raw timestamps)" },
      skewBox,
      " Adjust clock skew",
      skewNote,
    ),
    status,
    h("span", { class: "tv-spacer" }),
    zoomButton,
    expandButton,
    collapseButton,
  );

  // ---------------------------------------------------------------------------------------------- layout
  const minimapRoot = h("div", { class: "tv-minimap" });
  const tabButtons = new Map();
  const panels = new Map();
  const tablist = h("div", { class: "tv-tabs", attrs: { role: "tablist", "aria-label": "Trace views" } });
  for (const [key, label] of TABS) {
    const button = h("button", {
      type: "button",
      class: "tv-tab",
      id: `tv-tab-${key}`,
      attrs: { role: "tab", "aria-controls": `tv-panel-${key}`, "aria-selected": "false" },
      on: { click: () => showTab(key) },
    }, label);
    if (key === "repeated") {
      const flagged = (model.analysis.repeated || []).length;
      if (flagged) button.append(h("span", { class: "tv-tab-count", text: String(flagged) }));
    }
    tabButtons.set(key, button);
    tablist.append(button);
    panels.set(key, h("div", { class: `tv-panel tv-panel-${key}`, id: `tv-panel-${key}`, hidden: true, attrs: { role: "tabpanel", "aria-labelledby": `tv-tab-${key}` } }));
  }
  const wfRoot = h("div", { class: "tv-wf" });
  const details = h("aside", { class: "tv-details", hidden: true, attrs: { "aria-label": "Span details" } });
  const markNote = h("div", { class: "tv-mark-note", hidden: true });
  panels.get("waterfall").append(markNote, h("div", { class: "tv-main" }, wfRoot, details));
  root.append(toolbar, minimapRoot, tablist, ...panels.values());

  // ---------------------------------------------------------------------------------------------- components
  const waterfall = new Waterfall(wfRoot, model, {
    onOpen: (row) => openDetails(row),
    onGroup: (group) => markGroup(group),
  });
  const minimap = new Minimap(minimapRoot, model, {
    onChange: (a, b) => {
      waterfall.setView(a, b);
      zoomButton.hidden = a <= 0 && b >= 1;
    },
  });
  const rendered = new Set();

  function fitHeight() {
    // The waterfall fills the window below its own top edge, so the page itself barely scrolls.
    for (const panel of panels.values()) {
      if (panel.hidden) continue;
      const top = panel.getBoundingClientRect().top + window.scrollY;
      panel.style.height = `${Math.max(360, window.innerHeight - top - 12)}px`;
    }
  }
  window.addEventListener("resize", fitHeight);

  function showTab(key) {
    for (const [name, panel] of panels) {
      panel.hidden = name !== key;
      tabButtons.get(name).setAttribute("aria-selected", name === key ? "true" : "false");
      tabButtons.get(name).classList.toggle("active", name === key);
    }
    setParam("view", key === "waterfall" ? "" : key);
    fitHeight();
    if (!rendered.has(key) || key === "stats" || key === "repeated") {
      rendered.add(key);
      const panel = panels.get(key);
      if (key === "stats") renderStats(panel, model, { onPick: (row) => pickOperation(row) });
      else if (key === "flame") {
        clear(panel);
        flame = new FlameGraph(panel, model);
      } else if (key === "repeated") renderRepeated(panel, model, { onPick: (g) => markGroup(g) });
    }
    if (key === "waterfall") waterfall.layout();
  }
  let flame = null;

  // ---------------------------------------------------------------------------------------------- details
  let openRow = -1;
  function openDetails(row, { center = false } = {}) {
    if (model.rowSpan[row] < 0) return;
    openRow = row;
    details.hidden = false;
    waterfall.setSelected(row);
    waterfall.setCursor(row, { scroll: false });
    waterfall.scrollTo(row, { center });
    renderDetails(details, {
      model,
      row,
      traceId: model.doc.trace_id,
      onClose: closeDetails,
      onJump: (spanId) => jumpTo(spanId),
      onGroup: (g) => markGroup(g),
      checkTrace: options.checkTrace,
    });
    details.scrollTop = 0;
    setParam("span", model.spans[model.rowSpan[row]].span_id);
    waterfall.layout();
  }
  function closeDetails() {
    openRow = -1;
    details.hidden = true;
    waterfall.setSelected(-1);
    setParam("span", "");
    waterfall.layout();
    waterfall.scroll.focus({ preventScroll: true });
  }
  function jumpTo(spanId, { center = true } = {}) {
    const i = model.index.get(spanId);
    if (i === undefined) return false;
    showTab("waterfall");
    if (waterfall.criticalOnly && !model.crit[i]) {
      criticalBox.checked = false;
      waterfall.setCriticalOnly(false);
    }
    openDetails(model.spanRow[i], { center });
    return true;
  }

  // ---------------------------------------------------------------------------------------------- find
  let matchRows = [];
  let matchPos = -1;
  let findTimer = 0;
  let lastFind = "";
  function runFind({ jump = true } = {}) {
    const text = findInput.value.trim();
    lastFind = text;
    setParam("find", text);
    const query = parseFind(text);
    if (query.empty) {
      matchRows = [];
      matchPos = -1;
      findCount.textContent = "";
      waterfall.setMatches(null);
      return;
    }
    const { flags, count } = findMatches(model, query);
    matchRows = [];
    for (let r = 0; r < model.rows; r += 1) if (model.rowSpan[r] >= 0 && flags[model.rowSpan[r]]) matchRows.push(r);
    matchPos = count ? 0 : -1;
    waterfall.setMatches(flags, count ? matchRows[0] : -1);
    updateCount(count);
    if (jump && count) goToMatch(0);
  }
  function updateCount(count = matchRows.length) {
    findCount.textContent = count ? `${fmtCount(matchPos + 1)} of ${fmtCount(count)}` : "no matches";
    findCount.classList.toggle("none", !count);
  }
  function goToMatch(pos) {
    if (!matchRows.length) return;
    matchPos = (pos + matchRows.length) % matchRows.length;
    const row = matchRows[matchPos];
    showTab("waterfall");
    if (waterfall.criticalOnly && !model.crit[model.rowSpan[row]]) {
      criticalBox.checked = false;
      waterfall.setCriticalOnly(false);
    }
    waterfall.currentMatch = row;
    waterfall.setCursor(row, { scroll: false });
    waterfall.scrollTo(row, { center: true });
    updateCount();
  }
  findInput.addEventListener("input", () => {
    clearTimeout(findTimer);
    findTimer = setTimeout(() => runFind(), model.n > 20000 ? 250 : 120);
  });
  findInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(findTimer);
      if (findInput.value.trim() !== lastFind) runFind();
      else goToMatch(matchPos + (event.shiftKey ? -1 : 1));
    } else if (event.key === "Escape") {
      findInput.value = "";
      runFind();
    }
  });
  prevButton.addEventListener("click", () => goToMatch(matchPos - 1));
  nextButton.addEventListener("click", () => goToMatch(matchPos + 1));

  // ---------------------------------------------------------------------------------------------- groups
  function markGroup(group) {
    const flags = new Uint8Array(model.n);
    let first = -1;
    for (const id of group.span_ids) {
      const i = model.index.get(id);
      if (i === undefined) continue;
      flags[i] = 1;
      const row = model.spanRow[i];
      if (first < 0 || row < first) first = row;
    }
    showTab("waterfall");
    waterfall.setMarked(flags);
    clear(markNote);
    markNote.append(
      h("span", { text: `Highlighting ${group.count}\u00d7 ${group.service}: ${group.operation}${group.n_plus_one ? " (likely N+1)" : ""} \u00b7 ${fmtDuration(group.total_ns)} in total` }),
      h("button", {
        type: "button",
        class: "linklike",
        text: "Clear",
        on: {
          click: () => {
            waterfall.setMarked(null);
            markNote.hidden = true;
            fitHeight();
          },
        },
      }),
    );
    markNote.hidden = false;
    fitHeight();
    const parent = model.index.get(group.parent_span_id);
    if (parent !== undefined) {
      const parentRow = model.spanRow[parent];
      waterfall.toggle(parentRow, true);
      waterfall.setCursor(parentRow, { scroll: false });
      waterfall.scrollTo(parentRow, { center: false });
      // Put the parent at the top so its repeated children fill the view.
      const pos = waterfall.reveal(parentRow);
      if (pos >= 0) waterfall.scroll.scrollTop = pos * 24;
    } else if (first >= 0) waterfall.scrollTo(first, { center: true });
  }

  function pickOperation(row) {
    findInput.value = `"${row.service}" "${row.operation}"`;
    runFind();
  }

  // ---------------------------------------------------------------------------------------------- toggles
  criticalBox.addEventListener("change", () => {
    waterfall.setCriticalOnly(criticalBox.checked);
    setParam("critical", criticalBox.checked ? "1" : "");
  });
  if (initial.get("critical") === "1") {
    criticalBox.checked = true;
    waterfall.setCriticalOnly(true);
  }
  expandButton.addEventListener("click", () => waterfall.expandAll());
  collapseButton.addEventListener("click", () => waterfall.collapseAll());
  zoomButton.addEventListener("click", () => minimap.set(0, 1, true));

  function describeSkew() {
    const shifted = model.analysis.adjusted_spans || 0;
    skewNote.textContent = model.adjusted ? (shifted ? ` (${fmtCount(shifted)} spans shifted)` : "") : " (showing raw times)";
  }
  skewBox.addEventListener("change", async () => {
    const adjust = skewBox.checked;
    skewBox.disabled = true;
    status.textContent = adjust ? "Adjusting clock skew\u2026" : "Loading raw times\u2026";
    try {
      const analysis = await options.loadAnalysis(adjust);
      applyAnalysis(model, analysis);
      setParam("raw", adjust ? "" : "1");
      describeSkew();
      status.textContent = "";
      waterfall.refreshVisible();
      waterfall.updateAxis();
      minimap.draw();
      rendered.clear();
      rendered.add("waterfall");
      if (flame) flame = null;
      const current = [...panels].find(([, panel]) => !panel.hidden);
      if (current && current[0] !== "waterfall") showTab(current[0]);
      if (openRow >= 0) openDetails(openRow);
    } catch (error) {
      skewBox.checked = !adjust;
      status.textContent = `Could not load the analysis: ${error.message}`;
    } finally {
      skewBox.disabled = false;
    }
  });
  describeSkew();

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest && event.target.closest("input, textarea, select");
    if (event.key === "/" && !typing) {
      event.preventDefault();
      findInput.focus();
      findInput.select();
    } else if (event.key === "Escape" && !typing && openRow >= 0) {
      closeDetails();
    }
  });

  // ---------------------------------------------------------------------------------------------- start
  const view = initial.get("view");
  showTab(TABS.some(([key]) => key === view) ? view : "waterfall");
  if (!panels.get("waterfall").hidden) fitHeight();
  minimap.draw();
  if (findInput.value.trim()) runFind({ jump: !initial.get("span") });
  const wanted = initial.get("span");
  if (wanted) {
    const id = wanted.toLowerCase();
    if (!jumpTo(id)) status.textContent = `Span ${id} is not in this trace.`;
  }
  waterfall.render();
  root.dataset.state = "ready";
  root.removeAttribute("aria-busy");
  if (options.onReady) options.onReady(model);
  return { model, waterfall, minimap, jumpTo };
}
