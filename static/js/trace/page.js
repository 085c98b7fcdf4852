// Trace page entry: fetch the trace and its analysis in parallel (session cookie), then mount the viewer.

import { getJSON } from "../api.js";
import { checkTrace, colourChips } from "./common.js";
import { clear, h } from "./dom.js";
import { fmtCount, fmtDuration } from "./format.js";
import { addServiceGraphTab } from "./servicegraph.js";
import { mountViewer } from "./viewer.js";

const page = document.getElementById("trace-page");
const root = document.getElementById("trace-viewer");

function fillHeader(model) {
  let depth = 0;
  for (const info of model.info) if (info && info.depth > depth) depth = info.depth;
  const fill = (name, text) => {
    const el = document.querySelector(`[data-fill="${name}"]`);
    if (el) el.textContent = text;
  };
  fill("depth", String(depth + 1));
  fill("critical", fmtDuration(model.analysis.critical_path_ns || 0));
  fill("spans", fmtCount(model.n));
}

function showError(message) {
  clear(root);
  root.removeAttribute("aria-busy");
  root.dataset.state = "error";
  root.append(
    h(
      "div",
      { class: "tv-error", attrs: { role: "alert" } },
      h("strong", { text: "The trace could not be loaded. " }),
      h("span", { text: message }),
      " ",
      h("a", { href: window.location.href, text: "Try again" }),
    ),
  );
}

/** Run the viewer's find for a service name (as a quoted phrase: find has no escapes, so the longest piece
 * without a double quote stands in for a name containing one). */
function findSpans(service) {
  const input = root.querySelector(".tv-find");
  if (!input) return;
  const phrase = String(service).split('"').sort((a, b) => b.length - a.length)[0];
  input.value = `"${phrase}"`;
  input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
}

async function main() {
  colourChips();
  const traceUrl = page.dataset.traceUrl;
  const analysisUrl = page.dataset.analysisUrl;
  const raw = new URL(window.location.href).searchParams.get("raw") === "1";
  let doc;
  let analysis;
  // Marks let bench/browser.py split "navigation to rows visible" into fetching and drawing.
  performance.mark("trace:fetch-start");
  try {
    [doc, analysis] = await Promise.all([getJSON(traceUrl), getJSON(`${analysisUrl}?adjust=${!raw}`)]);
  } catch (error) {
    showError(error.message);
    return;
  }
  performance.mark("trace:fetched");
  // Read before mounting: the viewer drops a ?view= it does not know (its own tabs only).
  const showServices = new URL(window.location.href).searchParams.get("view") === "services";
  mountViewer(root, {
    doc,
    analysis,
    urlSync: true,
    loadAnalysis: (adjust) => getJSON(`${analysisUrl}?adjust=${adjust}`),
    checkTrace,
    onReady: fillHeader,
  });
  addServiceGraphTab(root, { url: page.dataset.serviceGraphUrl, findSpans, show: showServices });
  performance.mark("trace:mounted");
}

if (page && root) main();
