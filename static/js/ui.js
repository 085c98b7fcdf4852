/** Small DOM helpers shared by the pages. Data is only ever set as text: names and attributes are untrusted. */

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Fill a results-state box: a spinner while loading, the message, and a Retry button when `onRetry` is given. */
export function renderState(box, kind, message, onRetry = null) {
  box.dataset.state = kind;
  box.hidden = false;
  box.replaceChildren();
  if (kind === "loading") box.append(el("span", "spinner"));
  box.append(el("span", "", message));
  if (onRetry) {
    const button = el("button", "secondary", "Retry");
    button.type = "button";
    button.addEventListener("click", onRetry);
    box.append(" ", button);
  }
}
