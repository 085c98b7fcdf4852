// Small helpers shared by the trace, upload and compare pages.

import { serviceColor, serviceColorLight } from "../colors.js";

/** Give every server-rendered `[data-service]` chip its service colours. */
export function colourChips(scope = document) {
  for (const chip of scope.querySelectorAll("[data-service]")) {
    chip.style.setProperty("--service", serviceColor(chip.dataset.service));
    chip.style.setProperty("--service-light", serviceColorLight(chip.dataset.service));
  }
}

const stored = new Map();
/** Whether a trace is stored (and visible to us): links to other traces are only offered when they are. */
export function checkTrace(traceId) {
  if (!stored.has(traceId)) {
    stored.set(
      traceId,
      fetch(`/api/v1/traces/${traceId}/summary`, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((response) => response.ok)
        .catch(() => false),
    );
  }
  return stored.get(traceId);
}
