// Compare page: service colours on the call paths, and an "only differences" filter.

import { colourChips } from "./common.js";

colourChips();
const only = document.getElementById("only-changes");
const table = document.getElementById("diff-table");
if (only && table) {
  only.addEventListener("change", () => {
    table.classList.toggle("only-changes", only.checked);
  });
}
