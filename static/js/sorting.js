/** Client-side table sorting kept in the URL as ?sort=key (ascending) or ?sort=-key (descending). */

/** The sort named in the URL, or `defaultSort` when it names no column of `sorts`. */
export function sortFromUrl(sorts, defaultSort) {
  const value = new URLSearchParams(window.location.search).get("sort") || defaultSort;
  const key = value.replace(/^-/, "");
  if (sorts[key]) return { key, descending: value.startsWith("-") };
  return { key: defaultSort.replace(/^-/, ""), descending: defaultSort.startsWith("-") };
}

/** Rows sorted by `sorts[key]` (strings by locale); ties by `tieBreak`, then in their original order. */
export function sortRows(rows, sorts, { key, descending }, tieBreak = null) {
  const value = sorts[key];
  const direction = descending ? -1 : 1;
  const compare = (a, b) => {
    const va = value(a);
    const vb = value(b);
    return typeof va === "string" ? va.localeCompare(vb) : va - vb;
  };
  return rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => compare(a.row, b.row) * direction || (tieBreak ? tieBreak(a.row, b.row) : 0) || a.index - b.index)
    .map((item) => item.row);
}

/** aria-sort on the header of the sorted column, cleared on the others (CSS draws the arrow from it). */
export function markSortedHeader(table, { key, descending }) {
  for (const th of table.querySelectorAll("th")) {
    const button = th.querySelector("[data-sort]");
    if (!button) continue;
    if (button.dataset.sort === key) th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
}

/**
 * Sort by clicking header buttons ([data-sort]): the first click on a column uses `firstDescending(key)`, another
 * click flips it. The sort is kept in ?sort= (dropped when it is the default), then `onSort()` redraws.
 */
export function bindSortHeaders(table, { getState, defaultSort, firstDescending, onSort }) {
  table.querySelector("thead").addEventListener("click", (event) => {
    const button = event.target.closest("[data-sort]");
    if (!button) return;
    const current = getState();
    const key = button.dataset.sort;
    const descending = current.key === key ? !current.descending : firstDescending(key);
    const value = `${descending ? "-" : ""}${key}`;
    const params = new URLSearchParams(window.location.search);
    if (value === defaultSort) params.delete("sort");
    else params.set("sort", value);
    const query = params.toString();
    history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
    onSort(params);
  });
}
