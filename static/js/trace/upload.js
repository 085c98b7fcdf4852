// Upload page: a dropped or chosen trace file is posted to /api/v1/uploads/view and shown in the same viewer as a
// stored trace (nothing is stored); "Store trace" posts the same file to /api/v1/uploads/store and opens the result.

import { serviceColor, serviceColorLight } from "../colors.js";
import { checkTrace } from "./common.js";
import { clear, h } from "./dom.js";
import { fmtBytes, fmtCount, fmtDuration } from "./format.js";
import { mountViewer } from "./viewer.js";

const page = document.getElementById("upload-page");
const input = document.getElementById("upload-file");
const dropzone = document.getElementById("dropzone");
const statusBox = document.getElementById("upload-status");
const errorBox = document.getElementById("upload-error");
const info = document.getElementById("upload-info");
const summary = document.getElementById("upload-summary");
const pick = document.getElementById("trace-pick");
const pickLabel = document.getElementById("trace-pick-label");
const storeForm = document.getElementById("store-form");
const viewerRoot = document.getElementById("trace-viewer");
const maxBytes = Number(page.dataset.maxBytes) * 1024 * 1024;

let file = null;
let traceId = "";
let busy = false;

function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

/** POST the file to `url` with query `params`; resolve the JSON answer or reject with the API's message. */
async function post(url, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined));
  let response;
  try {
    response = await fetch(`${url}?${query}`, {
      method: "POST",
      body: file,
      credentials: "same-origin",
      headers: { "Content-Type": "application/octet-stream", "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
  } catch {
    throw new Error("The server could not be reached.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new Error((body && body.error) || `The server answered ${response.status}.`);
  return body;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function describe(trace) {
  const root = trace.root_service ? `${trace.root_service}: ${trace.root_name}` : "(root span missing)";
  return `${root} \u00b7 ${fmtCount(trace.span_count)} spans \u00b7 ${fmtDuration(trace.duration_ns)} \u00b7 ${trace.trace_id}`;
}

function renderSummary(data) {
  const doc = data.document;
  clear(summary);
  summary.append(
    ...[
    h(
      "div",
      { class: "upload-file" },
      h("strong", { text: file.name }),
      h("span", { class: "muted", text: ` ${fmtBytes(file.size)} \u00b7 ${data.traces.length} trace${data.traces.length === 1 ? "" : "s"} in the file` }),
    ),
    h(
      "div",
      { class: "upload-trace" },
      doc.root_service
        ? h("span", {
            class: "svc-chip",
            text: doc.root_service,
            style: { "--service": serviceColor(doc.root_service), "--service-light": serviceColorLight(doc.root_service) },
          })
        : null,
      h("span", { class: "trace-op", text: doc.root_service ? ` ${doc.root_name}` : "(root span missing)" }),
      h("span", { class: "mono", text: `  ${fmtDuration(doc.duration_ns)}` }),
      h("span", { class: "muted", text: ` \u00b7 ${fmtCount(doc.span_count)} spans \u00b7 ${doc.services.length} services \u00b7 ` }),
      h("span", { class: doc.error_count ? "error" : "muted", text: `${fmtCount(doc.error_count)} errors` }),
      h("code", { class: "muted", text: `  ${doc.trace_id}` }),
    ),
    data.rejected ? h("p", { class: "sd-warn", text: `${data.message} (they are not shown).` }) : null,
    ].filter(Boolean),
  );
  clear(pick);
  for (const trace of data.traces) {
    pick.append(h("option", { value: trace.trace_id, text: describe(trace), selected: trace.trace_id === data.trace_id }));
  }
  pickLabel.hidden = data.traces.length < 2;
  info.hidden = false;
}

async function open(chosen) {
  if (busy) return;
  if (file.size > maxBytes) {
    showError(`${file.name} is ${fmtBytes(file.size)}; files up to ${page.dataset.maxBytes} MiB can be opened.`);
    return;
  }
  busy = true;
  showError("");
  statusBox.textContent = `Reading ${file.name} (${fmtBytes(file.size)})\u2026`;
  try {
    const data = await post(page.dataset.viewUrl, { trace_id: chosen, adjust: "true" });
    traceId = data.trace_id;
    renderSummary(data);
    viewerRoot.hidden = false;
    mountViewer(viewerRoot, {
      doc: data.document,
      analysis: data.analysis,
      urlSync: false,
      checkTrace,
      loadAnalysis: (adjust) =>
        post(page.dataset.viewUrl, { trace_id: traceId, adjust: String(adjust), parts: "analysis" }).then((r) => r.analysis),
    });
    statusBox.textContent = "";
  } catch (error) {
    statusBox.textContent = "";
    showError(`${file.name}: ${error.message}`);
    if (!traceId) {
      info.hidden = true;
      viewerRoot.hidden = true;
    }
  } finally {
    busy = false;
  }
}

function choose(files) {
  if (!files || !files.length) return;
  file = files[0];
  traceId = "";
  open("");
}

input.addEventListener("change", () => choose(input.files));
for (const name of ["dragenter", "dragover"]) {
  dropzone.addEventListener(name, (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropzone.addEventListener(name, () => dropzone.classList.remove("over"));
}
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  choose(event.dataTransfer.files);
});
pick.addEventListener("change", () => open(pick.value));

if (storeForm) {
  storeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file || busy) return;
    const button = document.getElementById("store-button");
    const project = document.getElementById("store-project").value;
    busy = true;
    button.disabled = true;
    showError("");
    statusBox.textContent = `Storing ${file.name} in ${project}\u2026`;
    try {
      const result = await post(page.dataset.storeUrl, { project, trace_id: traceId });
      statusBox.textContent = `Stored ${fmtCount(result.accepted_spans)} spans; opening the trace\u2026`;
      window.location.assign(result.url);
    } catch (error) {
      statusBox.textContent = "";
      showError(`Could not store ${file.name}: ${error.message}`);
    } finally {
      busy = false;
      button.disabled = false;
    }
  });
}
