// Column sorting for the leaderboard's tables. Reads only cell text and data-sort attributes; writes only
// aria-sort attributes and the order of existing rows.
(function () {
  "use strict";

  function cellKey(row, index, type) {
    var cell = row.cells[index];
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    if (type === "number") {
      var n = parseFloat(raw);
      return isNaN(n) ? Number.POSITIVE_INFINITY : n;
    }
    return raw.trim().toLowerCase();
  }

  function sortBy(table, header, index) {
    var type = header.getAttribute("data-type") || "text";
    var current = header.getAttribute("aria-sort");
    var direction;
    if (current === "ascending") {
      direction = "descending";
    } else if (current === "descending") {
      direction = "ascending";
    } else {
      direction = header.getAttribute("data-first") || "ascending";
    }
    var headers = table.tHead.rows[0].cells;
    for (var h = 0; h < headers.length; h++) {
      headers[h].removeAttribute("aria-sort");
    }
    header.setAttribute("aria-sort", direction);

    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, position) {
      return { row: row, key: cellKey(row, index, type), position: position };
    });
    var sign = direction === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      if (a.key < b.key) return -sign;
      if (a.key > b.key) return sign;
      return a.position - b.position;
    });
    rows.forEach(function (item) {
      body.appendChild(item.row);
    });
  }

  function setUp() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      var headers = table.tHead.rows[0].cells;
      Array.prototype.forEach.call(headers, function (header, index) {
        var button = header.querySelector("button");
        if (button) {
          button.addEventListener("click", function () {
            sortBy(table, header, index);
          });
        }
      });
      table.classList.add("js-sortable");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
