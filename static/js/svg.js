// Building SVG with the DOM: names and labels are untrusted, so text always goes in through textContent.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (undefined, null and false are left out) and children. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export function svgText(text, attrs = {}) {
  const node = svg("text", attrs);
  node.textContent = text;
  return node;
}

export function tspan(text, attrs = {}) {
  const node = svg("tspan", attrs);
  node.textContent = text;
  return node;
}

/** A <title> child: the native tooltip. */
export function tooltip(text) {
  const node = svg("title");
  node.textContent = text;
  return node;
}
