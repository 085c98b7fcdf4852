// The trace as flat typed arrays, built once per page: the waterfall, minimap, flame graph and find all index into
// them, so a 100,000-span trace costs a few arrays rather than 100,000 objects per view.
//
// Spans are indexed by their position in `doc.spans` ("span index"). Rows are the waterfall lines in tree order
// ("row index"): every span once, plus a marker row above each group of orphans whose parent never arrived.

import { nsDiff, splitNs } from "./format.js";

/** Build the model from GET /api/v1/traces/<id> and GET .../analysis. */
export function buildModel(doc, analysis) {
  const spans = doc.spans || [];
  const n = spans.length;
  const index = new Map();
  const docBase = splitNs(doc.start_ns);
  const rawRel = new Float64Array(n); // start - trace start (raw clocks)
  const dur = new Float64Array(n);
  const svc = new Int32Array(n);
  const error = new Uint8Array(n);
  const services = [];
  const serviceIndex = new Map();
  for (let i = 0; i < n; i += 1) {
    const span = spans[i];
    if (!index.has(span.span_id)) index.set(span.span_id, i);
    rawRel[i] = nsDiff(span.start_ns, docBase);
    dur[i] = Number(span.duration_ns) || 0;
    let k = serviceIndex.get(span.service_name);
    if (k === undefined) {
      k = services.length;
      services.push(span.service_name);
      serviceIndex.set(span.service_name, k);
    }
    svc[i] = k;
    error[i] = span.status_code === "ERROR" ? 1 : 0;
  }
  const model = { doc, spans, n, index, docBase, rawRel, dur, svc, error, services, serviceIndex };
  Object.assign(model, buildRows(spans, index, analysis));
  applyAnalysis(model, analysis);
  return model;
}

function buildRows(spans, index, analysis) {
  const n = spans.length;
  const order = analysis.order || [];
  const info = analysis.spans || {};
  const orphans = new Set(analysis.orphans || []);
  const depthOf = (id) => (info[id] ? info[id].depth : 0);

  // `order` is a preorder: each top-level subtree is a run starting at depth 0.
  const normal = [];
  const groups = new Map(); // missing parent id -> runs
  for (let pos = 0; pos < order.length; ) {
    let end = pos + 1;
    while (end < order.length && depthOf(order[end]) > 0) end += 1;
    const rootId = order[pos];
    if (orphans.has(rootId)) {
      const root = spans[index.get(rootId)];
      const parent = (root && root.parent_span_id) || "";
      if (!groups.has(parent)) groups.set(parent, []);
      groups.get(parent).push([pos, end]);
    } else {
      normal.push([pos, end]);
    }
    pos = end;
  }

  const cap = n + groups.size + 1;
  const rowSpan = new Int32Array(cap);
  const rowDepth = new Int32Array(cap);
  const markers = new Map(); // row -> {kind, parentId, count}
  const seen = new Uint8Array(n);
  let rows = 0;
  const pushRun = ([pos, end], extra) => {
    let count = 0;
    for (let p = pos; p < end; p += 1) {
      const i = index.get(order[p]);
      if (i === undefined || seen[i]) continue;
      seen[i] = 1;
      rowSpan[rows] = i;
      rowDepth[rows] = depthOf(order[p]) + extra;
      rows += 1;
      count += 1;
    }
    return count;
  };
  for (const run of normal) pushRun(run, 0);
  for (const [parentId, runs] of groups) {
    const marker = { kind: "missing", parentId, count: 0 };
    markers.set(rows, marker);
    rowSpan[rows] = -1;
    rowDepth[rows] = 0;
    rows += 1;
    for (const run of runs) marker.count += pushRun(run, 1);
  }
  // Spans the analysis did not place (a parent cycle in hostile input): still shown, under their own marker.
  const leftovers = [];
  for (let i = 0; i < n; i += 1) if (!seen[i] && index.get(spans[i].span_id) === i) leftovers.push(i);
  if (leftovers.length) {
    const grown = rows + 1 + leftovers.length;
    const spanGrown = new Int32Array(grown);
    spanGrown.set(rowSpan.subarray(0, rows));
    const depthGrown = new Int32Array(grown);
    depthGrown.set(rowDepth.subarray(0, rows));
    markers.set(rows, { kind: "unlinked", parentId: "", count: leftovers.length });
    spanGrown[rows] = -1;
    rows += 1;
    for (const i of leftovers) {
      spanGrown[rows] = i;
      depthGrown[rows] = 1;
      rows += 1;
    }
    return finishRows(spanGrown, depthGrown, rows, markers, n);
  }
  return finishRows(rowSpan, rowDepth, rows, markers, n);
}

function finishRows(rowSpanAll, rowDepthAll, rows, markers, n) {
  const rowSpan = rowSpanAll.subarray(0, rows);
  const rowDepth = rowDepthAll.subarray(0, rows);
  const rowEnd = new Int32Array(rows); // exclusive end of the row's subtree: a subtree is a contiguous run
  const rowParent = new Int32Array(rows);
  const spanRow = new Int32Array(n).fill(-1);
  const stack = [];
  let maxDepth = 0;
  for (let r = 0; r < rows; r += 1) {
    const d = rowDepth[r];
    if (d > maxDepth) maxDepth = d;
    while (stack.length && rowDepth[stack[stack.length - 1]] >= d) rowEnd[stack.pop()] = r;
    rowParent[r] = stack.length ? stack[stack.length - 1] : -1;
    stack.push(r);
    if (rowSpan[r] >= 0) spanRow[rowSpan[r]] = r;
  }
  while (stack.length) rowEnd[stack.pop()] = rows;
  return { rows, rowSpan, rowDepth, rowEnd, rowParent, spanRow, markers, maxDepth };
}

/** (Re)apply an analysis: adjusted or raw start offsets, critical path, repeated groups. */
export function applyAnalysis(model, analysis) {
  const { n, spans, rawRel } = model;
  const shift = nsDiff(analysis.start_ns, model.docBase); // analysis start - document start
  const start = new Float64Array(n);
  const skew = new Float64Array(n);
  const crit = new Float64Array(n);
  const info = new Array(n);
  const table = analysis.spans || {};
  let end = 0;
  for (let i = 0; i < n; i += 1) {
    const a = table[spans[i].span_id];
    info[i] = a || null;
    const s = a ? a.skew_ns : 0;
    skew[i] = s;
    start[i] = rawRel[i] + s - shift;
    crit[i] = a ? a.critical_ns : 0;
    if (start[i] + model.dur[i] > end) end = start[i] + model.dur[i];
  }
  const repeatedByParent = new Map(); // span index -> groups
  for (const group of analysis.repeated || []) {
    const parent = model.index.get(group.parent_span_id);
    if (parent === undefined) continue;
    if (!repeatedByParent.has(parent)) repeatedByParent.set(parent, []);
    repeatedByParent.get(parent).push(group);
  }
  Object.assign(model, {
    analysis,
    adjusted: Boolean(analysis.adjusted),
    shift,
    start,
    skew,
    crit,
    info,
    total: Math.max(Number(analysis.duration_ns) || 0, end, 1),
    repeatedByParent,
  });
}

/** Offset of an event (absolute ns string) from the analysis start, moved with its span's clock-skew shift. */
export function eventOffset(model, spanIndex, timeNs) {
  return nsDiff(timeNs, model.docBase) + model.skew[spanIndex] - model.shift;
}

/** The rows shown: collapsed subtrees skipped; `keep(row)` filters rows (their subtrees are still walked). */
export function visibleRows(model, collapsed, keep) {
  const out = new Int32Array(model.rows);
  let k = 0;
  for (let r = 0; r < model.rows; ) {
    if (keep && !keep(r)) {
      r += 1;
      continue;
    }
    out[k] = r;
    k += 1;
    r = collapsed[r] ? model.rowEnd[r] : r + 1;
  }
  return out.subarray(0, k);
}
