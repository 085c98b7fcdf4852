// In-trace search: whitespace-separated terms ("quoted phrases" allowed), all of which must occur (case-insensitive,
// substring) in a span's name, service, span ID, attribute keys and values (also as key=value), event names or
// resource attributes. A term starting with "-" excludes the spans containing it.

import { fmtValue } from "./format.js";

export function parseFind(text) {
  const include = [];
  const exclude = [];
  const re = /(-?)"([^"]*)"|(\S+)/g;
  let m;
  while ((m = re.exec(String(text || ""))) !== null) {
    if (m[3] !== undefined) {
      const term = m[3].toLowerCase();
      if (term.length > 1 && term.startsWith("-")) exclude.push(term.slice(1));
      else if (term !== "-") include.push(term);
    } else if (m[2]) {
      (m[1] ? exclude : include).push(m[2].toLowerCase());
    }
  }
  return { include, exclude, empty: include.length === 0 && exclude.length === 0 };
}

function attributeText(attributes) {
  const parts = [];
  for (const [key, value] of Object.entries(attributes || {})) parts.push(`${key}=${fmtValue(value)}`);
  return parts.join("\n");
}

/** One lowercase text per span, built on the first search only (it costs memory on big traces). */
function haystacks(model) {
  if (model.haystacks) return model.haystacks;
  const resources = model.doc.resources || {};
  const resourceText = new Map();
  const out = new Array(model.n);
  for (let i = 0; i < model.n; i += 1) {
    const span = model.spans[i];
    let resource = resourceText.get(span.resource_id);
    if (resource === undefined) {
      const r = resources[span.resource_id];
      resource = r ? attributeText(r.attributes) : "";
      resourceText.set(span.resource_id, resource);
    }
    const events = (span.events || []).map((e) => `${e.name}\n${attributeText(e.attributes)}`).join("\n");
    out[i] = [
      span.name,
      span.service_name,
      span.span_id,
      span.status_message || "",
      attributeText(span.attributes),
      events,
      resource,
    ]
      .join("\n")
      .toLowerCase();
  }
  model.haystacks = out;
  return out;
}

/** Span-indexed match flags and their count. */
export function findMatches(model, query) {
  const flags = new Uint8Array(model.n);
  if (query.empty) return { flags, count: 0 };
  const texts = haystacks(model);
  let count = 0;
  outer: for (let i = 0; i < model.n; i += 1) {
    const text = texts[i];
    for (const term of query.include) if (!text.includes(term)) continue outer;
    for (const term of query.exclude) if (text.includes(term)) continue outer;
    flags[i] = 1;
    count += 1;
  }
  return { flags, count };
}
