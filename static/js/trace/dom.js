// DOM building without innerHTML: every piece of trace data is untrusted and only ever lands in textContent or in
// attribute values set through the DOM API.

/**
 * h("div", {class: "x", text: "...", title, attrs: {...}, dataset: {...}, style: {...}, on: {click: fn}}, ...children)
 * Children may be nodes, strings (text nodes), arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "attrs") for (const [name, v] of Object.entries(value)) el.setAttribute(name, v);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") {
      for (const [name, v] of Object.entries(value)) {
        if (name.startsWith("--")) el.style.setProperty(name, v);
        else el.style[name] = v;
      }
    } else if (key === "on") for (const [name, fn] of Object.entries(value)) el.addEventListener(name, fn);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}
