// The virtualized waterfall: fixed-height rows, and only the rows in (or near) the viewport exist in the DOM.
// A pool of row elements is re-bound as the user scrolls; row i of the visible list always uses slot i % pool size,
// so scrolling by one row re-binds one slot. Nothing here is per span: 100,000 spans cost what 60 rows cost.

import { serviceColor, serviceColorLight } from "../colors.js";
import { h } from "./dom.js";
import { fmtDuration } from "./format.js";
import { eventOffset, visibleRows } from "./model.js";

export const ROW_H = 24;
const BUFFER = 12; // rows rendered above and below the viewport
const MAX_EVENT_TICKS = 64;
const MIN_LABEL = 160;

function indentOf(depth) {
  // Deep trees keep a readable name column: past 24 levels each level indents less.
  return depth <= 24 ? depth * 14 : 24 * 14 + (depth - 24) * 3;
}

/** Index of `value` in the ascending `array`, or -1. */
function search(array, value) {
  let lo = 0;
  let hi = array.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (array[mid] === value) return mid;
    if (array[mid] < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

export class Waterfall {
  /**
   * @param root element to build into
   * @param model see model.js
   * @param callbacks {onOpen(row), onGroup(group), onCursor(row)}
   */
  constructor(root, model, callbacks = {}) {
    this.model = model;
    this.cb = callbacks;
    this.collapsed = new Uint8Array(model.rows);
    this.view = [0, 1];
    this.matches = null;
    this.currentMatch = -1;
    this.marked = null;
    this.criticalOnly = false;
    this.cursor = -1;
    this.selected = -1;
    this.ver = 0;
    this.pool = [];
    this.width = 0;
    this.labelWidth = Math.round(Math.min(520, Math.max(300, root.clientWidth * 0.36))) || 360;
    this.colors = model.services.map((name) => serviceColor(name));
    this.tints = model.services.map((name) => serviceColorLight(name));
    this.build(root);
    this.refreshVisible();
    new ResizeObserver(() => this.layout()).observe(this.scroll);
    this.layout();
  }

  build(root) {
    this.root = root;
    root.classList.add("wf");
    this.axis = h("div", { class: "wf-axis", attrs: { "aria-hidden": "true" } });
    this.axisLabels = [0, 1, 2, 3, 4].map((k) => h("span", { class: `wf-tick-label t${k}` }));
    this.axis.append(...this.axisLabels);
    this.head = h(
      "div",
      { class: "wf-head" },
      h("div", { class: "wf-head-label" }, h("span", { text: "Service & operation" })),
      this.axis,
    );
    this.canvas = h("div", { class: "wf-canvas" });
    this.scroll = h(
      "div",
      {
        class: "wf-scroll",
        tabIndex: 0,
        attrs: { role: "tree", "aria-label": "Spans (arrow keys move, Enter opens details)" },
      },
      this.canvas,
    );
    this.splitter = h("div", {
      class: "wf-splitter",
      title: "Drag to resize the name column",
      attrs: { role: "separator", "aria-orientation": "vertical" },
    });
    this.grid = h(
      "div",
      { class: "wf-grid", attrs: { "aria-hidden": "true" } },
      [1, 2, 3].map((k) => h("span", { class: `wf-gridline g${k}` })),
    );
    this.body = h("div", { class: "wf-body" }, this.grid, this.scroll, this.splitter);
    root.append(this.head, this.body);

    this.scroll.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.canvas.addEventListener("click", (event) => this.onClick(event));
    this.scroll.addEventListener("keydown", (event) => this.onKey(event));
    this.splitter.addEventListener("pointerdown", (event) => this.onSplit(event));
  }

  // ------------------------------------------------------------------------------------------------ state

  refreshVisible() {
    const { model } = this;
    const keep = this.criticalOnly ? (r) => model.rowSpan[r] >= 0 && model.crit[model.rowSpan[r]] > 0 : null;
    this.vis = visibleRows(model, this.collapsed, keep);
    this.canvas.style.height = `${this.vis.length * ROW_H}px`;
    this.invalidate();
  }

  invalidate() {
    this.ver += 1;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.render();
    });
  }

  layout() {
    const total = this.scroll.clientWidth;
    if (!total) return;
    this.labelWidth = Math.max(MIN_LABEL, Math.min(this.labelWidth, total - 200));
    this.root.style.setProperty("--wf-label", `${this.labelWidth}px`);
    this.width = Math.max(50, total - this.labelWidth - 1);
    this.updateAxis();
    this.invalidate();
  }

  setView(start, end) {
    this.view = [Math.max(0, start), Math.min(1, Math.max(end, start + 1e-9))];
    this.updateAxis();
    this.invalidate();
  }

  updateAxis() {
    const [a, b] = this.view;
    const total = this.model.total;
    this.axisLabels.forEach((label, k) => {
      label.textContent = fmtDuration((a + ((b - a) * k) / 4) * total);
    });
  }

  setCriticalOnly(on) {
    this.criticalOnly = on;
    this.refreshVisible();
  }

  setMatches(flags, currentRow = -1) {
    this.matches = flags;
    this.currentMatch = currentRow;
    this.invalidate();
  }

  setMarked(flags) {
    this.marked = flags;
    this.invalidate();
  }

  toggle(row, force) {
    if (this.model.rowEnd[row] <= row + 1) return;
    const next = force === undefined ? !this.collapsed[row] : !force;
    this.collapsed[row] = next ? 1 : 0;
    this.refreshVisible();
  }

  expandAll() {
    this.collapsed.fill(0);
    this.refreshVisible();
  }

  collapseAll() {
    const { rowEnd } = this.model;
    for (let r = 0; r < this.model.rows; r += 1) this.collapsed[r] = rowEnd[r] > r + 1 ? 1 : 0;
    this.refreshVisible();
  }

  /** Expand the ancestors of `row` so it is in the visible list (unless a filter hides it). */
  reveal(row) {
    let changed = false;
    for (let p = this.model.rowParent[row]; p >= 0; p = this.model.rowParent[p]) {
      if (this.collapsed[p]) {
        this.collapsed[p] = 0;
        changed = true;
      }
    }
    if (changed) this.refreshVisible();
    return search(this.vis, row);
  }

  /** Scroll `row` into view (centred when asked or when far away). */
  scrollTo(row, { center = false } = {}) {
    const pos = this.reveal(row);
    if (pos < 0) return false;
    const top = pos * ROW_H;
    const height = this.scroll.clientHeight;
    if (center || top < this.scroll.scrollTop || top + ROW_H > this.scroll.scrollTop + height) {
      this.scroll.scrollTop = center ? top - height / 2 + ROW_H / 2 : top < this.scroll.scrollTop ? top : top - height + ROW_H;
    }
    this.schedule();
    return true;
  }

  setCursor(row, { scroll = true } = {}) {
    this.cursor = row;
    if (scroll && row >= 0) this.scrollTo(row);
    this.invalidate();
    if (this.cb.onCursor) this.cb.onCursor(row);
  }

  setSelected(row) {
    this.selected = row;
    this.invalidate();
  }

  // ------------------------------------------------------------------------------------------------ render

  render() {
    const { vis } = this;
    const height = this.scroll.clientHeight || 600;
    const top = this.scroll.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H) - BUFFER);
    const last = Math.min(vis.length, Math.ceil((top + height) / ROW_H) + BUFFER);
    const needed = Math.ceil(height / ROW_H) + 2 * BUFFER + 2;
    while (this.pool.length < needed) this.pool.push(this.makeSlot());
    const size = this.pool.length;
    const used = new Uint8Array(size);
    for (let pos = first; pos < last; pos += 1) {
      const slot = this.pool[pos % size];
      used[pos % size] = 1;
      this.bind(slot, vis[pos], pos);
    }
    for (let k = 0; k < size; k += 1) {
      const slot = this.pool[k];
      if (!used[k] && slot.row !== -1) {
        slot.el.hidden = true;
        slot.row = -1;
      }
    }
    this.scroll.setAttribute("aria-activedescendant", this.cursor >= 0 && search(vis, this.cursor) >= first ? "wf-cursor" : "");
    if (this.cb.onRender) this.cb.onRender(first, last);
  }

  makeSlot() {
    const toggle = h("button", { class: "wf-toggle", type: "button", tabIndex: -1 });
    const mark = h("span", { class: "wf-mark" });
    const err = h("span", { class: "wf-err", text: "!", title: "Error status", attrs: { "aria-label": "error" } });
    const svc = h("span", { class: "wf-svc" });
    const name = h("span", { class: "wf-name" });
    const badge = h("button", { class: "wf-badge", type: "button", tabIndex: -1 });
    const more = h("span", { class: "wf-more" });
    const label = h("div", { class: "wf-label" }, toggle, mark, err, svc, name, badge, more);
    const bar = h("div", { class: "wf-bar" });
    const dur = h("span", { class: "wf-dur" });
    const skew = h("span", { class: "wf-skew", text: "\u21c4" });
    const tl = h("div", { class: "wf-tl" }, bar, dur, skew);
    const el = h("div", { class: "wf-row", attrs: { role: "treeitem" } }, label, tl);
    el.hidden = true;
    this.canvas.append(el);
    return { el, label, toggle, mark, err, svc, name, badge, more, tl, bar, dur, skew, segs: [], ticks: [], row: -1, ver: -1 };
  }

  bind(slot, row, pos) {
    const { el } = slot;
    el.style.transform = `translateY(${pos * ROW_H}px)`;
    if (el.hidden) el.hidden = false;
    if (slot.row === row && slot.ver === this.ver) return;
    slot.row = row;
    slot.ver = this.ver;
    const m = this.model;
    const i = m.rowSpan[row];
    const depth = m.rowDepth[row];
    const hasKids = m.rowEnd[row] > row + 1;
    const collapsed = hasKids && this.collapsed[row] === 1;
    el.dataset.row = String(row);
    el.id = row === this.cursor ? "wf-cursor" : "";
    el.setAttribute("aria-level", String(depth + 1));
    el.setAttribute("aria-selected", row === this.selected ? "true" : "false");
    if (hasKids) el.setAttribute("aria-expanded", collapsed ? "false" : "true");
    else el.removeAttribute("aria-expanded");

    let cls = "wf-row";
    if (row === this.selected) cls += " selected";
    if (row === this.cursor) cls += " cursor";
    slot.label.style.paddingLeft = `${indentOf(depth) + 4}px`;
    slot.label.style.setProperty("--guides", `${Math.min(depth, 24) * 14}px`);
    slot.toggle.style.visibility = hasKids ? "visible" : "hidden";
    slot.toggle.textContent = collapsed ? "\u25b8" : "\u25be";
    slot.toggle.setAttribute("aria-label", collapsed ? "Expand" : "Collapse");
    slot.more.hidden = !collapsed;
    if (collapsed) slot.more.textContent = `+${(m.rowEnd[row] - row - 1).toLocaleString("en-US")}`;

    if (i < 0) {
      const marker = m.markers.get(row);
      cls += " marker";
      slot.mark.style.background = "";
      slot.err.hidden = true;
      slot.badge.hidden = true;
      slot.svc.textContent = marker.kind === "missing" ? "missing parent" : "unlinked spans";
      slot.name.textContent =
        marker.kind === "missing"
          ? `span ${marker.parentId || "(none)"} never arrived \u00b7 ${marker.count} orphaned`
          : `${marker.count} spans in a parent cycle`;
      slot.name.title = slot.name.textContent;
      slot.bar.hidden = true;
      slot.dur.textContent = "";
      slot.skew.hidden = true;
      this.hideExtra(slot.segs, 0);
      this.hideExtra(slot.ticks, 0);
      el.className = cls;
      return;
    }

    const span = m.spans[i];
    const color = this.colors[m.svc[i]];
    if (m.error[i]) cls += " error";
    if (this.matches) cls += this.matches[i] ? (row === this.currentMatch ? " match current" : " match") : " nomatch";
    if (this.marked && this.marked[i]) cls += " marked";
    el.className = cls;
    slot.mark.style.background = color;
    slot.err.hidden = !m.error[i];
    slot.svc.textContent = span.service_name;
    slot.name.textContent = span.name;
    slot.name.title = `${span.service_name}: ${span.name}`;
    const groups = m.repeatedByParent.get(i);
    if (groups) {
      const g = groups[0];
      slot.badge.hidden = false;
      slot.badge.textContent = `${g.count}\u00d7 ${g.operation}${groups.length > 1 ? ` +${groups.length - 1}` : ""}`;
      slot.badge.title = `${g.count} sibling spans "${g.service}: ${g.operation}"${g.n_plus_one ? " (likely N+1)" : ""}. Click to highlight them.`;
      slot.badge.classList.toggle("n1", Boolean(g.n_plus_one));
    } else {
      slot.badge.hidden = true;
    }

    // Bar geometry in px of the timeline column, for the zoomed view window.
    const total = m.total;
    const vs = this.view[0] * total;
    const k = this.width / ((this.view[1] - this.view[0]) * total);
    const W = this.width;
    const x0 = (m.start[i] - vs) * k;
    let x1 = (m.start[i] + m.dur[i] - vs) * k;
    if (x1 - x0 < 2) x1 = x0 + 2;
    const bar = slot.bar;
    if (x1 < 0 || x0 > W) {
      bar.hidden = true;
    } else {
      bar.hidden = false;
      const left = Math.max(x0, -1);
      bar.style.left = `${left}px`;
      bar.style.width = `${Math.min(x1, W + 1) - left}px`;
      bar.style.background = color;
    }
    slot.dur.textContent = fmtDuration(m.dur[i]);
    if (x1 + 70 < W) {
      slot.dur.style.left = `${Math.max(x1, 0) + 4}px`;
      slot.dur.style.right = "";
    } else {
      slot.dur.style.left = "";
      slot.dur.style.right = `${Math.max(W - Math.max(x0, 0), 0) + 4}px`;
    }
    slot.skew.hidden = !m.skew[i];
    if (m.skew[i]) {
      slot.skew.title = `Clock skew: shifted by ${fmtDuration(m.skew[i])}`;
      slot.skew.style.left = `${Math.min(Math.max(x0, 0), W) - 14}px`;
    }

    // Critical path sections: darker segments over the bar.
    const info = m.info[i];
    let used = 0;
    if (info && info.critical.length) {
      for (const [s, e] of info.critical) {
        const a = Math.max((s - vs) * k, -1);
        const b = Math.min((e - vs) * k, W + 1);
        if (b <= 0 || a >= W || b - a <= 0) continue;
        const seg = this.piece(slot.segs, used, slot.tl, "wf-crit");
        seg.style.left = `${a}px`;
        seg.style.width = `${Math.max(b - a, 1)}px`;
        used += 1;
      }
    }
    this.hideExtra(slot.segs, used);

    // Events: ticks on the bar.
    used = 0;
    const events = span.events;
    if (events && events.length) {
      for (let e = 0; e < events.length && used < MAX_EVENT_TICKS; e += 1) {
        const x = (eventOffset(m, i, events[e].time_ns) - vs) * k;
        if (x < 0 || x > W) continue;
        const tick = this.piece(slot.ticks, used, slot.tl, "wf-evt");
        tick.style.left = `${x}px`;
        tick.title = events[e].name;
        used += 1;
      }
    }
    this.hideExtra(slot.ticks, used);
  }

  piece(list, n, parent, cls) {
    let node = list[n];
    if (!node) {
      node = h("span", { class: cls });
      list.push(node);
      parent.append(node);
    }
    node.hidden = false;
    return node;
  }

  hideExtra(list, from) {
    for (let k = from; k < list.length; k += 1) if (!list[k].hidden) list[k].hidden = true;
  }

  // ------------------------------------------------------------------------------------------------ input

  onClick(event) {
    const rowEl = event.target.closest(".wf-row");
    if (!rowEl) return;
    const row = Number(rowEl.dataset.row);
    if (event.target.closest(".wf-toggle")) {
      this.toggle(row);
      this.setCursor(row, { scroll: false });
      return;
    }
    if (event.target.closest(".wf-badge")) {
      const groups = this.model.repeatedByParent.get(this.model.rowSpan[row]);
      if (groups && this.cb.onGroup) this.cb.onGroup(groups[0]);
      return;
    }
    this.scroll.focus({ preventScroll: true });
    this.setCursor(row, { scroll: false });
    if (this.model.rowSpan[row] >= 0) {
      if (this.cb.onOpen) this.cb.onOpen(row);
    } else {
      this.toggle(row);
    }
  }

  onKey(event) {
    const { vis } = this;
    if (!vis.length) return;
    let pos = this.cursor >= 0 ? search(vis, this.cursor) : -1;
    const page = Math.max(1, Math.floor(this.scroll.clientHeight / ROW_H) - 1);
    const m = this.model;
    const go = (p) => {
      const clamped = Math.max(0, Math.min(vis.length - 1, p));
      this.setCursor(vis[clamped]);
    };
    switch (event.key) {
      case "ArrowDown":
        go(pos + 1);
        break;
      case "ArrowUp":
        go(pos < 0 ? 0 : pos - 1);
        break;
      case "PageDown":
        go(pos + page);
        break;
      case "PageUp":
        go(pos - page);
        break;
      case "Home":
        go(0);
        break;
      case "End":
        go(vis.length - 1);
        break;
      case "ArrowRight": {
        if (pos < 0) return go(0);
        const row = vis[pos];
        if (m.rowEnd[row] > row + 1) {
          if (this.collapsed[row]) this.toggle(row, true);
          else go(pos + 1);
        }
        break;
      }
      case "ArrowLeft": {
        if (pos < 0) return go(0);
        const row = vis[pos];
        if (m.rowEnd[row] > row + 1 && !this.collapsed[row]) this.toggle(row, false);
        else if (m.rowParent[row] >= 0) this.setCursor(m.rowParent[row]);
        break;
      }
      case "Enter":
      case " ":
        if (pos < 0) return;
        if (m.rowSpan[vis[pos]] >= 0 && this.cb.onOpen) this.cb.onOpen(vis[pos]);
        else this.toggle(vis[pos]);
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  onSplit(event) {
    event.preventDefault();
    const startX = event.clientX;
    const startWidth = this.labelWidth;
    const move = (e) => {
      this.labelWidth = startWidth + e.clientX - startX;
      this.layout();
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }
}
