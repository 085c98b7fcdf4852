// Flame graph of the trace, aggregated by call path: spans with the same (service, operation) under the same path
// are one node; a node's width is the total duration of its spans. Children wider than their parent in total
// (parallel calls) are scaled to fit it. Drawn on a canvas; hover shows a tooltip, click zooms into a node.

import { serviceColor, serviceColorLight } from "../colors.js";
import { clear, h } from "./dom.js";
import { fmtCount, fmtDuration, fmtPercent } from "./format.js";

const LEVEL_H = 20;

function newNode(service, name, parent) {
  return { service, name, parent, count: 0, total: 0, self: 0, errors: 0, children: new Map(), marker: false };
}

export function buildFlameTree(model) {
  const root = newNode("", "all spans", null);
  const stack = [];
  for (let r = 0; r < model.rows; r += 1) {
    const i = model.rowSpan[r];
    const depth = model.rowDepth[r];
    const parent = depth > 0 && stack[depth - 1] ? stack[depth - 1] : root;
    let node;
    if (i < 0) {
      const key = `\u0001missing:${r}`;
      node = newNode("", "missing parent", parent);
      node.marker = true;
      parent.children.set(key, node);
    } else {
      const service = model.spans[i].service_name;
      const name = model.spans[i].name;
      const key = `${service}\u0000${name}`;
      node = parent.children.get(key);
      if (!node) {
        node = newNode(service, name, parent);
        parent.children.set(key, node);
      }
      node.count += 1;
      node.total += model.dur[i];
      node.self += model.info[i] ? model.info[i].self_ns : 0;
      node.errors += model.error[i];
    }
    stack[depth] = node;
  }
  // Marker nodes (and the root) have no duration of their own: they span their children.
  const fill = (node) => {
    let sum = 0;
    for (const child of node.children.values()) sum += fill(child);
    if (node.marker || node === root) node.total = sum;
    return node.total;
  };
  fill(root);
  return root;
}

export class FlameGraph {
  constructor(root, model) {
    this.model = model;
    this.tree = buildFlameTree(model);
    this.focus = this.tree.children.size === 1 ? [...this.tree.children.values()][0] : this.tree;
    this.top = this.focus;
    this.canvas = h("canvas", { class: "fg-canvas", attrs: { role: "img", "aria-label": "Flame graph" } });
    this.tip = h("div", { class: "fg-tip", hidden: true, attrs: { role: "tooltip" } });
    this.crumb = h("span", { class: "fg-crumb" });
    this.reset = h("button", {
      type: "button",
      class: "tv-btn",
      text: "Reset zoom",
      on: { click: () => this.zoom(this.top) },
    });
    clear(root);
    root.append(
      h(
        "div",
        { class: "fg-bar" },
        h("span", {
          class: "tv-note",
          text: "Aggregated by call path (service: operation); width = total duration. Click a frame to zoom.",
        }),
        this.crumb,
        this.reset,
      ),
      h("div", { class: "fg-wrap" }, this.canvas, this.tip),
    );
    this.canvas.addEventListener("mousemove", (e) => this.onMove(e));
    this.canvas.addEventListener("mouseleave", () => {
      this.tip.hidden = true;
    });
    this.canvas.addEventListener("click", (e) => this.onClick(e));
    new ResizeObserver(() => this.draw()).observe(root);
  }

  zoom(node) {
    this.focus = node;
    this.draw();
  }

  layout() {
    const width = this.canvas.clientWidth || 800;
    const frames = [];
    // Ancestors of the focus, full width, then the focus subtree.
    const chain = [];
    for (let n = this.focus; n && n !== this.top.parent; n = n.parent) chain.unshift(n);
    chain.forEach((node, level) => {
      if (node !== this.focus) frames.push({ node, x: 0, w: width, level, ancestor: true });
    });
    const place = (node, x, w, level) => {
      frames.push({ node, x, w, level, ancestor: false });
      const children = [...node.children.values()].sort((a, b) => b.total - a.total);
      let sum = 0;
      for (const child of children) sum += child.total;
      const scale = w / Math.max(node.total, sum, 1);
      let cx = x;
      for (const child of children) {
        const cw = child.total * scale;
        if (cw >= 0.5) place(child, cx, cw, level + 1);
        cx += cw;
      }
    };
    place(this.focus, 0, width, chain.length - 1);
    return frames;
  }

  draw() {
    const width = this.canvas.clientWidth;
    if (!width) return;
    this.frames = this.layout();
    const levels = this.frames.reduce((max, f) => Math.max(max, f.level), 0) + 1;
    const height = levels * LEVEL_H;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    const ctx = this.canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    ctx.textBaseline = "middle";
    for (const f of this.frames) {
      const y = f.level * LEVEL_H;
      const w = Math.max(f.w - 1, 0.5);
      const { node } = f;
      ctx.fillStyle = node.marker || node === this.tree ? "#e9ebf0" : serviceColorLight(node.service, 0.3);
      ctx.globalAlpha = f.ancestor ? 0.55 : 1;
      ctx.fillRect(f.x, y, w, LEVEL_H - 1);
      if (!node.marker && node !== this.tree) {
        ctx.fillStyle = node.errors ? "#c92a2a" : serviceColor(node.service);
        ctx.fillRect(f.x, y, Math.min(3, w), LEVEL_H - 1);
      }
      if (w > 28) {
        const label = node.service ? `${node.service}: ${node.name}` : node.name;
        const chars = Math.floor((w - 8) / 6.6);
        ctx.fillStyle = "#1d2330";
        ctx.fillText(label.length > chars ? `${label.slice(0, Math.max(chars - 1, 1))}\u2026` : label, f.x + 5, y + LEVEL_H / 2);
      }
      ctx.globalAlpha = 1;
    }
    const names = [];
    for (let n = this.focus; n && n !== this.top.parent; n = n.parent) names.unshift(n.service ? n.name : n.name);
    this.crumb.textContent = this.focus === this.top ? "" : `Zoomed: ${names.join(" \u203a ")}`;
    this.reset.hidden = this.focus === this.top;
  }

  frameAt(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const level = Math.floor((event.clientY - rect.top) / LEVEL_H);
    return (this.frames || []).find((f) => f.level === level && x >= f.x && x < f.x + f.w) || null;
  }

  onMove(event) {
    const f = this.frameAt(event);
    if (!f) {
      this.tip.hidden = true;
      return;
    }
    const { node } = f;
    clear(this.tip);
    const total = this.model.total;
    this.tip.append(
      h("div", { class: "fg-tip-title", text: node.service ? `${node.service}: ${node.name}` : node.name }),
      h("div", {
        text: node.marker || node === this.tree
          ? `${fmtDuration(node.total)} in its subtrees`
          : `${fmtCount(node.count)} span${node.count === 1 ? "" : "s"} \u00b7 total ${fmtDuration(node.total)} (${fmtPercent(node.total / total)} of trace)`,
      }),
      node.count
        ? h("div", { text: `self ${fmtDuration(node.self)} \u00b7 avg ${fmtDuration(node.total / node.count)}${node.errors ? ` \u00b7 ${node.errors} errors` : ""}` })
        : null,
    );
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    this.tip.style.left = `${Math.min(x + 12, rect.width - 280)}px`;
    this.tip.style.top = `${event.clientY - rect.top + 14}px`;
    this.tip.hidden = false;
  }

  onClick(event) {
    const f = this.frameAt(event);
    if (f) this.zoom(f.node === this.focus && this.focus.parent && this.focus !== this.top ? this.focus.parent : f.node);
  }
}
