// A small accessible combobox: suggestions under a text input, from an async source.
// Options are rendered with textContent only (their text comes from stored span data).

let counter = 0;

/**
 * Attach suggestions to `input`.
 * source(text) -> Promise<Array<{value: string, label?: string, detail?: string}>>
 *   `value` replaces the input's text when picked; `label` (default value) is shown, `detail` greyed on the right.
 * onPick(item) is called after an item was picked.
 */
export function attachAutocomplete(input, source, { onPick = () => {}, delay = 120 } = {}) {
  counter += 1;
  const list = document.createElement("ul");
  list.id = `ac-list-${counter}`;
  list.className = "ac-list";
  list.setAttribute("role", "listbox");
  list.hidden = true;
  const wrapper = document.createElement("div");
  wrapper.className = "ac";
  input.parentNode.insertBefore(wrapper, input);
  wrapper.append(input, list);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", list.id);

  let items = [];
  let active = -1;
  let timer = 0;
  let sequence = 0;

  function close() {
    list.hidden = true;
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    const options = list.children;
    if (active >= 0 && options[active]) options[active].classList.remove("active");
    active = index;
    if (active >= 0 && options[active]) {
      options[active].classList.add("active");
      options[active].scrollIntoView({ block: "nearest" });
      input.setAttribute("aria-activedescendant", options[active].id);
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function render() {
    list.replaceChildren();
    items.forEach((item, index) => {
      const option = document.createElement("li");
      option.id = `${list.id}-${index}`;
      option.setAttribute("role", "option");
      option.className = "ac-option";
      const label = document.createElement("span");
      label.className = "ac-label";
      label.textContent = item.label ?? item.value;
      option.append(label);
      if (item.detail) {
        const detail = document.createElement("span");
        detail.className = "ac-detail";
        detail.textContent = item.detail;
        option.append(detail);
      }
      // mousedown, not click: it comes before the input's blur, which would close the list first.
      option.addEventListener("mousedown", (event) => {
        event.preventDefault();
        pick(index);
      });
      list.append(option);
    });
    if (items.length && document.activeElement === input) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    } else {
      close();
    }
  }

  function pick(index) {
    const item = items[index];
    if (!item) return;
    input.value = item.value;
    close();
    input.dispatchEvent(new Event("change", { bubbles: true }));
    onPick(item);
  }

  async function refresh() {
    const mine = (sequence += 1);
    let found = [];
    try {
      found = await source(input.value);
    } catch {
      found = []; // Suggestions are a convenience: a failed lookup just shows none.
    }
    if (mine !== sequence) return; // a newer keystroke already asked again
    const typed = input.value;
    items = found.filter((item) => item.value !== typed).slice(0, 50);
    active = -1;
    render();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  }

  input.addEventListener("input", schedule);
  input.addEventListener("focus", schedule);
  input.addEventListener("blur", () => {
    clearTimeout(timer);
    sequence += 1;
    close();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (list.hidden) {
        schedule();
        return;
      }
      highlight(Math.min(active + 1, items.length - 1));
    } else if (event.key === "ArrowUp") {
      if (list.hidden) return;
      event.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (event.key === "Enter") {
      if (!list.hidden && active >= 0) {
        event.preventDefault(); // pick, don't submit the form yet
        pick(active);
      }
    } else if (event.key === "Escape") {
      if (!list.hidden) {
        event.preventDefault();
        close();
      }
    }
  });

  return { refresh, close };
}
