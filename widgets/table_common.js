// atdata-lab: what data_table.js and samples_table.js share. anywidget loads one ES module per
// widget, so this file has no exports: read_esm() in atdata_lab/widgets/_base.py puts it in front of
// each of them.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// Make `target` (in header cell `th`) sort by column `col`: the kernel sorts on `sort_key` and
// `descending`; a click on the sorted column flips its direction. Returns whether `col` is sorted.
function makeSortable(model, th, target, col) {
  target.classList.add("atdata-sortable");
  target.title = `Sort by ${col.label}`;
  const sorted = col.key === model.get("sort_key");
  if (sorted) {
    const descending = model.get("descending");
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    target.appendChild(el("span", "atdata-sort-indicator", descending ? " ▼" : " ▲"));
  }
  target.addEventListener("click", () => {
    if (model.get("sort_key") === col.key) {
      model.set("descending", !model.get("descending"));
    } else {
      model.set("sort_key", col.key);
      model.set("descending", false);
    }
    model.save_changes();
  });
  return sorted;
}
