// On a narrow screen a data table shows each row as a small card of "label value" lines
// (console.css, table.stacked), so nothing hides beyond the right edge. The labels are the
// table's own column headers, copied onto its cells here; a table htmx swaps in later (the
// live dashboard) is labelled as it arrives; a table narrow enough anyway says so with class
// "keep". Without scripts, tables scroll sideways.
(function () {
  function label(root) {
    root.querySelectorAll(".table-wrap table:not(.keep)").forEach(function (table) {
      const heads = Array.from(table.querySelectorAll("thead th")).map(function (th) {
        return th.textContent.trim();
      });
      if (!heads.length) return;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.from(row.children).forEach(function (cell, index) {
          if (cell.colSpan === 1 && heads[index]) cell.setAttribute("data-label", heads[index]);
        });
      });
      table.classList.add("stacked");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { label(document); });
  document.addEventListener("htmx:afterSwap", function (event) { label(event.target); });
})();
