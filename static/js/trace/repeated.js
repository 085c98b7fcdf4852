// Repeated siblings: a parent calling the same (service, operation) many times, the N+1 pattern.

import { serviceColor } from "../colors.js";
import { clear, h } from "./dom.js";
import { fmtCount, fmtDuration } from "./format.js";

export function renderRepeated(root, model, { onPick }) {
  const groups = model.analysis.repeated || [];
  clear(root);
  if (!groups.length) {
    root.append(h("p", { class: "tv-note", text: "No span repeats the same operation 3 or more times under one parent." }));
    return;
  }
  const flagged = groups.filter((g) => g.n_plus_one).length;
  root.append(
    h("p", {
      class: "tv-note",
      text: `${fmtCount(groups.length)} groups of repeated sibling spans${flagged ? `, ${flagged} flagged as likely N+1 (10 or more calls)` : ""}. Click one to highlight its spans in the waterfall.`,
    }),
  );
  root.append(
    h(
      "table",
      { class: "data tv-repeated" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { text: "Repeated call" }),
          h("th", { text: "Under" }),
          h("th", { class: "num", text: "Calls" }),
          h("th", { class: "num", text: "Total" }),
          h("th", { class: "num", text: "Avg" }),
        ),
      ),
      h(
        "tbody",
        {},
        groups.map((g) => {
          const parentIndex = model.index.get(g.parent_span_id);
          const parent = parentIndex === undefined ? null : model.spans[parentIndex];
          return h(
            "tr",
            { class: "clickable", on: { click: () => onPick(g) }, title: "Show these spans in the waterfall" },
            h(
              "td",
              {},
              h("span", { class: `rep-count${g.n_plus_one ? " n1" : ""}`, text: `${fmtCount(g.count)}\u00d7` }),
              h("span", { class: "svc-dot", style: { background: serviceColor(g.service) } }),
              h("span", { class: "rep-svc", text: `${g.service}: ` }),
              h("span", { class: "rep-op", text: g.operation }),
              g.n_plus_one ? h("span", { class: "n1-flag", text: "N+1" }) : null,
            ),
            h("td", { class: "op-cell", text: parent ? `${parent.service_name}: ${parent.name}` : g.parent_span_id }),
            h("td", { class: "num", text: fmtCount(g.count) }),
            h("td", { class: "num", text: fmtDuration(g.total_ns) }),
            h("td", { class: "num", text: fmtDuration(g.total_ns / g.count) }),
          );
        }),
      ),
    ),
  );
}
