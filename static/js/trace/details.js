// The span details panel. Everything in it comes from the trace and is set as text, never as markup.

import { serviceColor, serviceColorLight } from "../colors.js";
import { clear, h } from "./dom.js";
import { fmtBytes, fmtDuration, fmtPercent, fmtSigned, fmtTimestamp, fmtValue } from "./format.js";
import { eventOffset } from "./model.js";

const LONG_VALUE = 400; // longer values are cut until asked for (multi-KB prompts freeze detail views otherwise)
const HEX_TRACE = /^[0-9a-f]{32}$/;

function valueNode(value) {
  const text = fmtValue(value);
  const cls = `sd-value${typeof value === "string" ? "" : " typed"}`;
  if (text.length <= LONG_VALUE) return h("span", { class: cls, text });
  const node = h("span", { class: cls, text: `${text.slice(0, LONG_VALUE)}\u2026` });
  const more = h("button", {
    type: "button",
    class: "linklike sd-more",
    text: `Show all (${fmtBytes(text.length)})`,
    on: {
      click: () => {
        node.textContent = text;
        more.remove();
      },
    },
  });
  return h("span", {}, node, " ", more);
}

function kvTable(attributes, emptyText = "none") {
  const keys = Object.keys(attributes || {}).sort();
  if (!keys.length) return h("p", { class: "sd-empty", text: emptyText });
  return h(
    "table",
    { class: "sd-kv" },
    h(
      "tbody",
      {},
      keys.map((key) => h("tr", {}, h("th", { text: key, title: key }), h("td", {}, valueNode(attributes[key])))),
    ),
  );
}

function section(title, count, ...content) {
  return h(
    "details",
    { class: "sd-section", open: true },
    h("summary", {}, title, count === null ? null : h("span", { class: "sd-count", text: String(count) })),
    ...content,
  );
}

function fact(label, ...value) {
  return [h("dt", { text: label }), h("dd", {}, ...value)];
}

/**
 * Fill `panel` with the details of the span at `row`.
 * ctx: {model, row, traceId, onClose(), onJump(spanId), onGroup(group), checkTrace(traceId) -> Promise<bool>}
 */
export function renderDetails(panel, ctx) {
  const { model, row } = ctx;
  const i = model.rowSpan[row];
  const span = model.spans[i];
  const info = model.info[i];
  const analysis = model.analysis;
  clear(panel);
  const color = serviceColor(span.service_name);

  const head = h(
    "header",
    { class: "sd-head" },
    h(
      "div",
      { class: "sd-title" },
      h("span", {
        class: "sd-chip",
        text: span.service_name,
        style: { "--service": color, "--service-light": serviceColorLight(span.service_name) },
      }),
      h("h2", { text: span.name, title: span.name }),
    ),
    h("button", {
      type: "button",
      class: "sd-close",
      text: "\u00d7",
      title: "Close (Esc)",
      attrs: { "aria-label": "Close span details" },
      on: { click: () => ctx.onClose() },
    }),
  );

  const critical = model.crit[i];
  const criticalTotal = analysis.critical_path_ns || 0;
  const skew = model.skew[i];
  let clock;
  if (!model.adjusted) clock = h("span", { class: "sd-raw", text: "raw timestamps (clock-skew adjustment is off)" });
  else if (skew) {
    clock = h("span", {
      class: "sd-skew",
      text: `adjusted by ${fmtSigned(skew)}`,
      title: "This span's host clock disagrees with its parent's; its times (and its same-host descendants') were shifted to fit inside the parent.",
    });
  } else clock = h("span", { class: "sd-muted", text: "not adjusted" });

  const statusText = span.status_code === "ERROR" ? "Error" : span.status_code === "OK" ? "OK" : "Unset";
  const parentIndex = span.parent_span_id ? model.index.get(span.parent_span_id) : undefined;
  let parent;
  if (!span.parent_span_id) parent = h("span", { class: "sd-muted", text: "none (root span)" });
  else if (parentIndex !== undefined) {
    parent = h("button", {
      type: "button",
      class: "linklike mono",
      text: span.parent_span_id,
      title: "Go to the parent span",
      on: { click: () => ctx.onJump(span.parent_span_id) },
    });
  } else parent = h("span", {}, h("code", { text: span.parent_span_id }), h("span", { class: "sd-warn", text: " never arrived" }));

  const facts = h(
    "dl",
    { class: "sd-facts" },
    fact("Service", span.service_name),
    fact("Kind", (span.kind || "UNSPECIFIED").toLowerCase()),
    fact(
      "Status",
      h("span", { class: `sd-status ${statusText.toLowerCase()}`, text: statusText }),
      span.status_message ? h("span", { class: "sd-status-message", text: ` ${span.status_message}` }) : null,
    ),
    fact(
      "Start",
      h("span", { class: "mono", text: `+${fmtDuration(Math.max(model.start[i], 0))}` }),
      h("span", { class: "sd-muted", text: ` ${fmtTimestamp(span.start_ns)}` }),
    ),
    fact("Duration", h("span", { class: "mono", text: fmtDuration(model.dur[i]) })),
    fact(
      "Self time",
      h("span", { class: "mono", text: info ? fmtDuration(info.self_ns) : "?" }),
      info && model.dur[i] ? h("span", { class: "sd-muted", text: ` (${fmtPercent(info.self_ns / model.dur[i])} of the span)` }) : null,
    ),
    fact(
      "Critical path",
      critical
        ? h(
            "span",
            { class: "sd-critical" },
            h("span", { class: "mono", text: fmtDuration(critical) }),
            ` \u00b7 ${fmtPercent(criticalTotal ? critical / criticalTotal : 0)} of the critical path`,
          )
        : h("span", { class: "sd-muted", text: "not on the critical path" }),
    ),
    fact("Clock", clock),
    fact("Span ID", h("code", { text: span.span_id })),
    fact("Parent", parent),
    span.trace_state ? fact("Trace state", h("code", { text: span.trace_state })) : null,
  );

  const resource = (model.doc.resources || {})[span.resource_id];
  const scope = span.scope || {};
  const events = span.events || [];
  const links = span.links || [];
  const groups = model.repeatedByParent.get(i) || [];
  const dropped = [
    span.dropped_attributes_count ? `${span.dropped_attributes_count} attributes` : "",
    span.dropped_events_count ? `${span.dropped_events_count} events` : "",
    span.dropped_links_count ? `${span.dropped_links_count} links` : "",
  ].filter(Boolean);

  const parts = [
    head,
    facts,
    dropped.length ? h("p", { class: "sd-warn", text: `The SDK dropped ${dropped.join(", ")} of this span.` }) : null,
    groups.length
      ? section(
          "Repeated children",
          groups.length,
          h(
            "ul",
            { class: "sd-groups" },
            groups.map((g) =>
              h(
                "li",
                {},
                h("button", {
                  type: "button",
                  class: `linklike${g.n_plus_one ? " n1" : ""}`,
                  text: `${g.count}\u00d7 ${g.service}: ${g.operation}`,
                  on: { click: () => ctx.onGroup(g) },
                }),
                h("span", { class: "sd-muted", text: ` ${fmtDuration(g.total_ns)} in total${g.n_plus_one ? " \u00b7 likely N+1" : ""}` }),
              ),
            ),
          ),
        )
      : null,
    section("Attributes", Object.keys(span.attributes || {}).length, kvTable(span.attributes)),
    section(
      "Resource",
      Object.keys((resource && resource.attributes) || {}).length,
      kvTable(resource ? resource.attributes : {}, "no resource attributes"),
    ),
    section(
      "Instrumentation scope",
      null,
      scope.name
        ? h("p", {}, h("code", { text: scope.name }), scope.version ? h("span", { class: "sd-muted", text: ` ${scope.version}` }) : null)
        : h("p", { class: "sd-empty", text: "not named" }),
    ),
    section("Events", events.length, eventsList(model, i, events)),
    section("Links", links.length, linksList(ctx, links)),
  ];
  panel.append(...parts.filter(Boolean));
}

function eventsList(model, i, events) {
  if (!events.length) return h("p", { class: "sd-empty", text: "none" });
  return h(
    "ol",
    { class: "sd-events" },
    events.map((event) => {
      const offset = eventOffset(model, i, event.time_ns) - model.start[i];
      return h(
        "li",
        {},
        h(
          "div",
          { class: "sd-event-head" },
          h("span", { class: "mono sd-event-time", text: fmtSigned(offset), title: fmtTimestamp(event.time_ns) }),
          h("span", { class: "sd-event-name", text: event.name || "(unnamed)" }),
        ),
        event.attributes && Object.keys(event.attributes).length ? kvTable(event.attributes) : null,
      );
    }),
  );
}

function linksList(ctx, links) {
  if (!links.length) return h("p", { class: "sd-empty", text: "none" });
  return h(
    "ul",
    { class: "sd-links" },
    links.map((link) => {
      const traceId = String(link.trace_id || "").toLowerCase();
      const spanId = String(link.span_id || "").toLowerCase();
      let target;
      if (traceId === ctx.traceId && ctx.model.index.has(spanId)) {
        target = h("button", {
          type: "button",
          class: "linklike",
          text: "Go to span in this trace",
          on: { click: () => ctx.onJump(spanId) },
        });
      } else if (HEX_TRACE.test(traceId) && !/^0+$/.test(traceId)) {
        target = h("a", {
          href: `/traces/${traceId}/?span=${encodeURIComponent(spanId)}`,
          text: "Open linked trace",
        });
        const note = h("span", { class: "sd-muted", text: "" });
        target = h("span", {}, target, note);
        if (ctx.checkTrace) {
          ctx.checkTrace(traceId).then((stored) => {
            if (!stored) {
              target.firstChild.replaceWith(h("span", { class: "sd-muted", text: "linked trace is not stored here" }));
            }
          });
        }
      } else target = h("span", { class: "sd-muted", text: "invalid trace ID" });
      return h(
        "li",
        {},
        h("div", {}, h("span", { class: "sd-muted", text: "trace " }), h("code", { text: traceId })),
        h("div", {}, h("span", { class: "sd-muted", text: "span " }), h("code", { text: spanId })),
        link.attributes && Object.keys(link.attributes).length ? kvTable(link.attributes) : null,
        h("div", {}, target),
      );
    }),
  );
}
