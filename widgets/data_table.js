// atdata-lab: a sortable table whose header and row clicks reach Python (anywidget ESM).
//
// Model traits (see DataTable in atdata_lab/widgets/_base.py):
//   columns     [{key, label, sortable, numeric}]
//   rows        [{<key>: display string, ...}]  (the row id is rows[i][row_key])
//   row_key     which cell identifies a row
//   sort_key    the column sorted by ("" for none); descending: its direction
//   selected    the id of the selected row ("" for none)
//   clicks      grows on every row click (so clicking the selected row again is seen too)
//   badges      {column key: {cell text: badge style}} — such cells show as badges
//   subtitle    {column key: other cell key} — shown under the cell in small text
//   empty_text  what the table says when it has no rows
//   css_prefix  prefix of the per-part classes (e.g. "atdata-index-browser")
//
// el() and makeSortable() come from table_common.js (put in front of this file).

function render({ model, el: root }) {
  const wrap = el("div", "atdata-data-table");
  const table = el("table", "atdata-table");
  wrap.appendChild(table);
  root.appendChild(wrap);

  const draw = () => {
    const prefix = model.get("css_prefix") || "atdata-table";
    const columns = model.get("columns") || [];
    const rows = model.get("rows") || [];
    const rowKey = model.get("row_key");
    const selected = model.get("selected");
    const badges = model.get("badges") || {};
    const subtitle = model.get("subtitle") || {};
    table.replaceChildren();

    const head = el("thead");
    const htr = el("tr");
    for (const col of columns) {
      const th = el("th", `${prefix}-th`);
      th.dataset.key = col.key;
      if (col.numeric) th.classList.add("atdata-num");
      const label = el("span", null, col.label);
      th.appendChild(label);
      if (col.sortable && makeSortable(model, th, th, col)) th.classList.add("atdata-sorted");
      htr.appendChild(th);
    }
    head.appendChild(htr);
    table.appendChild(head);

    const body = el("tbody");
    if (!rows.length) {
      const tr = el("tr", `${prefix}-empty`);
      const td = el("td", "atdata-empty", model.get("empty_text") || "Nothing to show");
      td.colSpan = Math.max(columns.length, 1);
      tr.appendChild(td);
      body.appendChild(tr);
    }
    for (const row of rows) {
      const id = String(row[rowKey] ?? "");
      const tr = el("tr", `${prefix}-row`);
      tr.dataset.id = id;
      tr.tabIndex = 0;
      if (id === selected) tr.classList.add("atdata-selected");
      for (const col of columns) {
        const td = el("td", `${prefix}-cell-${col.key}`);
        if (col.numeric) td.classList.add("atdata-num");
        const text = row[col.key] ?? "";
        if (text) td.title = String(text); // cells stay on one line: the full value on hover
        const styles = badges[col.key];
        if (styles && text && styles[text]) {
          td.appendChild(el("span", `atdata-badge atdata-badge-${styles[text]}`, text));
        } else {
          td.appendChild(el("span", null, text));
        }
        const sub = subtitle[col.key];
        if (sub && row[sub]) {
          td.appendChild(el("div", "atdata-muted atdata-subtitle atdata-wrap", row[sub]));
        }
        tr.appendChild(td);
      }
      const choose = () => {
        model.set("selected", id);
        model.set("clicks", (model.get("clicks") || 0) + 1);
        model.save_changes();
      };
      tr.addEventListener("click", choose);
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          choose();
        }
      });
      body.appendChild(tr);
    }
    table.appendChild(body);
  };

  const names = ["columns", "rows", "sort_key", "descending", "selected", "badges", "subtitle", "empty_text"];
  for (const n of names) model.on(`change:${n}`, draw);
  draw();
  return () => {
    for (const n of names) model.off(`change:${n}`, draw);
  };
}

export default { render };
