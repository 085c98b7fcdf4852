// The minimap: every span of the trace drawn once on a canvas (one thin line per row, in waterfall order), with a
// window that can be dragged, resized from its edges, or redrawn by dragging across the map. The window is the
// waterfall's time axis: its edges are fractions of the trace duration. Double-click resets.

import { serviceColor } from "../colors.js";
import { h } from "./dom.js";
import { fmtDuration } from "./format.js";

const HEIGHT = 56;

let probe = null;

/** A CSS colour as a pixel value of ImageData (bytes R, G, B, A in memory order), read back from a 1x1 canvas. */
function rgba(css) {
  if (!probe) {
    const canvas = document.createElement("canvas");
    canvas.width = 1;
    canvas.height = 1;
    probe = canvas.getContext("2d", { willReadFrequently: true });
  }
  const ctx = probe;
  ctx.fillStyle = "#000";
  ctx.fillStyle = css;
  ctx.fillRect(0, 0, 1, 1);
  const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
  return new Uint32Array(new Uint8Array([r, g, b, 255]).buffer)[0];
}
const MIN_FRACTION = 1e-4;

export class Minimap {
  constructor(root, model, { onChange }) {
    this.model = model;
    this.onChange = onChange;
    this.window = [0, 1];
    this.canvas = h("canvas", { class: "mm-canvas", attrs: { "aria-hidden": "true" } });
    this.shadeLeft = h("div", { class: "mm-shade" });
    this.shadeRight = h("div", { class: "mm-shade" });
    this.handleLeft = h("div", { class: "mm-handle left", title: "Drag to change the start of the zoom window" });
    this.handleRight = h("div", { class: "mm-handle right", title: "Drag to change the end of the zoom window" });
    this.box = h("div", { class: "mm-window", title: "Drag to pan; drag the edges to resize" }, this.handleLeft, this.handleRight);
    this.overlay = h(
      "div",
      {
        class: "mm-overlay",
        title: "Drag across the map to zoom into a time range; double-click to reset",
        attrs: { role: "slider", "aria-label": "Zoom window", tabIndex: 0, "aria-valuemin": 0, "aria-valuemax": 100 },
      },
      this.shadeLeft,
      this.shadeRight,
      this.box,
    );
    this.ticks = h(
      "div",
      { class: "mm-axis" },
      [0, 1, 2, 3, 4].map((k) => h("span", { class: `mm-tick t${k}`, text: fmtDuration((model.total * k) / 4) })),
    );
    root.classList.add("mm");
    root.append(h("div", { class: "mm-map" }, this.canvas, this.overlay), this.ticks);
    this.overlay.addEventListener("pointerdown", (e) => this.onDown(e));
    this.overlay.addEventListener("dblclick", () => this.set(0, 1, true));
    this.overlay.addEventListener("keydown", (e) => this.onKey(e));
    new ResizeObserver(() => this.draw()).observe(root);
  }

  /** Redraw the spans (after a raw/adjusted switch, or a resize). */
  draw() {
    const { model, canvas } = this;
    const cssWidth = canvas.clientWidth;
    if (!cssWidth) return;
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(cssWidth * dpr);
    const height = Math.round(HEIGHT * dpr);
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    // Pixels are written directly: 100,000 fillRect calls take a quarter of a second, this takes a few ms.
    const image = ctx.createImageData(width, height);
    const pixels = new Uint32Array(image.data.buffer);
    const colors = model.services.map((name) => rgba(serviceColor(name)));
    const rows = model.rows || 1;
    const k = width / model.total;
    for (let r = 0; r < model.rows; r += 1) {
      const i = model.rowSpan[r];
      if (i < 0) continue;
      const y0 = Math.floor((r * height) / rows);
      const y1 = Math.max(y0 + 1, Math.floor(((r + 1) * height) / rows));
      const x0 = Math.max(0, Math.min(width - 1, Math.floor(model.start[i] * k)));
      const x1 = Math.min(width, Math.max(x0 + 1, Math.ceil((model.start[i] + model.dur[i]) * k)));
      const color = colors[model.svc[i]];
      for (let y = y0; y < y1 && y < height; y += 1) pixels.fill(color, y * width + x0, y * width + x1);
    }
    ctx.putImageData(image, 0, 0);
    this.place();
  }

  set(start, end, notify = false) {
    let a = Math.max(0, Math.min(start, end));
    let b = Math.min(1, Math.max(start, end));
    if (b - a < MIN_FRACTION) {
      const mid = (a + b) / 2;
      a = Math.max(0, mid - MIN_FRACTION / 2);
      b = Math.min(1, a + MIN_FRACTION);
    }
    this.window = [a, b];
    this.place();
    if (notify) this.onChange(a, b);
  }

  place() {
    const [a, b] = this.window;
    this.shadeLeft.style.left = "0";
    this.shadeLeft.style.width = `${a * 100}%`;
    this.shadeRight.style.left = `${b * 100}%`;
    this.shadeRight.style.width = `${(1 - b) * 100}%`;
    this.box.style.left = `${a * 100}%`;
    this.box.style.width = `${(b - a) * 100}%`;
    this.overlay.setAttribute("aria-valuenow", String(Math.round(a * 100)));
    this.overlay.setAttribute(
      "aria-valuetext",
      `${fmtDuration(a * this.model.total)} to ${fmtDuration(b * this.model.total)}`,
    );
    this.overlay.classList.toggle("zoomed", a > 0 || b < 1);
  }

  fractionAt(event) {
    const rect = this.overlay.getBoundingClientRect();
    return Math.max(0, Math.min(1, (event.clientX - rect.left) / Math.max(rect.width, 1)));
  }

  onDown(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    this.overlay.setPointerCapture(event.pointerId);
    const origin = this.fractionAt(event);
    const [a0, b0] = this.window;
    // Unzoomed, the window covers the whole map: any drag selects a range.
    const zoomed = a0 > 0 || b0 < 1;
    let mode = "select";
    if (zoomed && event.target === this.handleLeft) mode = "left";
    else if (zoomed && event.target === this.handleRight) mode = "right";
    else if (zoomed && event.target === this.box) mode = "pan";
    let moved = false;
    const move = (e) => {
      const f = this.fractionAt(e);
      if (Math.abs(f - origin) * this.overlay.clientWidth > 2) moved = true;
      if (!moved) return;
      if (mode === "left") this.set(Math.min(f, b0 - MIN_FRACTION), b0, true);
      else if (mode === "right") this.set(a0, Math.max(f, a0 + MIN_FRACTION), true);
      else if (mode === "pan") {
        const width = b0 - a0;
        const a = Math.max(0, Math.min(1 - width, a0 + f - origin));
        this.set(a, a + width, true);
      } else this.set(origin, f, true);
    };
    const up = () => {
      this.overlay.removeEventListener("pointermove", move);
      this.overlay.removeEventListener("pointerup", up);
      this.overlay.removeEventListener("pointercancel", up);
    };
    this.overlay.addEventListener("pointermove", move);
    this.overlay.addEventListener("pointerup", up);
    this.overlay.addEventListener("pointercancel", up);
  }

  onKey(event) {
    const [a, b] = this.window;
    const width = b - a;
    const step = width * 0.1;
    if (event.key === "ArrowLeft") this.set(Math.max(0, a - step), Math.max(0, a - step) + width, true);
    else if (event.key === "ArrowRight") this.set(Math.min(1 - width, a + step), Math.min(1 - width, a + step) + width, true);
    else if (event.key === "ArrowUp" || event.key === "+") this.set(a + width * 0.1, b - width * 0.1, true);
    else if (event.key === "ArrowDown" || event.key === "-") this.set(a - width * 0.125, b + width * 0.125, true);
    else if (event.key === "Escape" || event.key === "0") this.set(0, 1, true);
    else return;
    event.preventDefault();
  }
}
