/** The time range picker of the service pages: ?lookback= (or start/end) in the URL, Back restores it. */

/** Wire a lookback picker; `onChange` runs after the URL changed. Returns the function that syncs it to the URL. */
export function bindLookbackPicker(picker, onChange) {
  function sync() {
    const params = new URLSearchParams(window.location.search);
    const lookback = params.get("lookback") || (params.get("start") || params.get("end") ? "" : "1h");
    for (const input of picker.querySelectorAll("input[name=lookback]")) input.checked = input.value === lookback;
    document.getElementById("custom-range")?.toggleAttribute("hidden", Boolean(params.get("lookback")) || !params.get("start"));
  }

  picker.addEventListener("change", (event) => {
    const input = event.target.closest("input[name=lookback]");
    if (!input) return;
    const params = new URLSearchParams(window.location.search);
    params.set("lookback", input.value);
    params.delete("start");
    params.delete("end");
    history.pushState(null, "", `?${params}`);
    sync();
    onChange();
  });
  window.addEventListener("popstate", () => {
    sync();
    onChange();
  });
  return sync;
}

/** Run `refresh` every `intervalMs` while the tab is visible, and at once on return if the data is older. */
export function refreshWhileVisible(refresh, intervalMs, lastLoadedAt) {
  setInterval(() => {
    if (!document.hidden) refresh();
  }, intervalMs);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && Date.now() - lastLoadedAt() >= intervalMs) refresh();
  });
}
