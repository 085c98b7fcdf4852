// Statistics view: one row per (service, operation) from the analysis, sortable by any column.

import { serviceColor } from "../colors.js";
import { clear, h } from "./dom.js";
import { fmtCount, fmtDuration } from "./format.js";

const COLUMNS = [
  { key: "service", label: "Service", text: true },
  { key: "operation", label: "Operation", text: true },
  { key: "count", label: "Count", fmt: fmtCount },
  { key: "errors", label: "Errors", fmt: fmtCount },
  { key: "total_ns", label: "Total", fmt: fmtDuration },
  { key: "avg_ns", label: "Avg", fmt: fmtDuration },
  { key: "min_ns", label: "Min", fmt: fmtDuration },
  { key: "max_ns", label: "Max", fmt: fmtDuration },
  { key: "self_ns", label: "Self time", fmt: fmtDuration },
  { key: "self_percent", label: "% of trace", fmt: (v) => `${Number(v).toFixed(1)}%` },
];

export function renderStats(root, model, { onPick } = {}) {
  let sortKey = "self_ns";
  let descending = true;
  const rows = (model.analysis.stats || []).slice();
  clear(root);
  const note = h("p", {
    class: "tv-note",
    text: `${fmtCount(rows.length)} operations \u00b7 self time is a span's duration minus the time covered by its children \u00b7 click a row to find its spans`,
  });
  const table = h("table", { class: "data tv-stats" });
  root.append(note, table);

  const draw = () => {
    rows.sort((a, b) => {
      const x = a[sortKey];
      const y = b[sortKey];
      const order = typeof x === "string" ? String(x).localeCompare(String(y)) : x - y;
      return descending ? -order : order;
    });
    clear(table);
    const head = h(
      "tr",
      {},
      COLUMNS.map((column) =>
        h(
          "th",
          {
            class: column.text ? "" : "num",
            attrs: { "aria-sort": column.key === sortKey ? (descending ? "descending" : "ascending") : "none" },
          },
          h("button", {
            type: "button",
            class: "th-sort",
            text: column.label + (column.key === sortKey ? (descending ? " \u25be" : " \u25b4") : ""),
            on: {
              click: () => {
                descending = column.key === sortKey ? !descending : !column.text;
                sortKey = column.key;
                draw();
              },
            },
          }),
        ),
      ),
    );
    const body = h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          { class: row.errors ? "has-error" : "", on: { click: () => onPick && onPick(row) } },
          h(
            "td",
            {},
            h("span", { class: "svc-dot", style: { background: serviceColor(row.service) } }),
            h("span", { text: row.service }),
          ),
          h("td", { class: "op-cell", text: row.operation, title: row.operation }),
          COLUMNS.slice(2).map((column) => {
            if (column.key === "self_percent") {
              return h(
                "td",
                { class: "num pct-cell" },
                h("span", { class: "pct-bar", style: { width: `${Math.min(100, row.self_percent)}%` } }),
                h("span", { class: "pct-text", text: column.fmt(row[column.key]) }),
              );
            }
            return h("td", { class: "num", text: column.fmt(row[column.key]) });
          }),
        ),
      ),
    );
    table.append(h("thead", {}, head), body);
  };
  draw();
}
