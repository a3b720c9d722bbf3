// atdata-lab: a virtualised samples table with column statistics in its headers (anywidget ESM).
//
// Only the rows in view are in the page: scrolling asks the kernel for a window of rows
// (`request` = {offset, count, seq}); the kernel answers in `window` = {version, offset, rows}.
// Sorting and filtering happen in the kernel (`sort_key`/`descending`, `filter_click`), which
// bumps `version` (cached rows are dropped) and `n_rows`. Model traits: see _TableView in
// atdata_lab/widgets/samples_table.py. el() and makeSortable() come from table_common.js (put in
// front of this file).

const MAX_SCROLL_PX = 8000000; // browsers cap element heights (~33M px): taller tables scale the scrollbar
const WIDTHS = { num: 112, img: 88, text: 240, arr: 150, none: 96, other: 180 };

function render({ model, el: root }) {
  const wrap = el("div", "atdata-samples-table-view");
  const scroller = el("div", "atdata-samples-table-x"); // sideways scroll of header + body together
  const header = el("div", "atdata-samples-table-header");
  const body = el("div", "atdata-samples-table-body");
  const spacer = el("div", "atdata-samples-table-spacer");
  const layer = el("div", "atdata-samples-table-layer");
  const empty = el("div", "atdata-samples-table-empty", "No sample matches the filter");
  body.append(spacer, layer);
  scroller.append(header, body);
  wrap.append(scroller, empty);
  root.appendChild(wrap);

  let cache = new Map(); // row position -> row
  let version = -1;
  let seq = 0;
  let pending = null; // {offset, count}
  let frame = 0;

  const rowH = () => model.get("row_height") || 40;
  const columns = () => model.get("columns") || [];

  const template = () =>
    columns()
      .map((c) => `${WIDTHS[c.kind] || WIDTHS.other}px`)
      .join(" ");

  const viewport = () => Math.max(body.clientHeight || 400, rowH());

  // which row is at the top, for a scroll position (scaled when the table is taller than MAX_SCROLL_PX)
  const geometry = () => {
    const n = model.get("n_rows") || 0;
    const full = n * rowH();
    const height = Math.min(full, MAX_SCROLL_PX);
    const visible = Math.ceil(viewport() / rowH()) + 1;
    let first;
    let shift = 0;
    if (full <= MAX_SCROLL_PX) {
      first = Math.floor(body.scrollTop / rowH());
      shift = body.scrollTop - first * rowH();
    } else {
      const room = Math.max(height - viewport(), 1);
      first = Math.floor((body.scrollTop / room) * Math.max(n - visible + 1, 0));
    }
    first = Math.max(0, Math.min(first, Math.max(n - 1, 0)));
    return { n, height, visible, first, shift };
  };

  const drawHeader = () => {
    header.replaceChildren();
    header.style.gridTemplateColumns = template();
    const filterCol = model.get("filter_column");
    for (const col of columns()) {
      const th = el("div", "atdata-samples-table-th");
      th.dataset.key = col.key;
      if (col.numeric) th.classList.add("atdata-num");
      if (col.key === filterCol) th.classList.add("atdata-samples-table-filtered");
      const title = el("div", "atdata-samples-table-th-title");
      const label = el("span", "atdata-samples-table-th-label", col.label);
      title.appendChild(label);
      if (col.sortable) {
        makeSortable(model, th, title, col);
      } else if (col.why_not) {
        title.title = col.why_not;
      }
      th.appendChild(title);
      if (col.stats_html) {
        // views/column_stats.py's renderer (escaped there): bars carry data-bin, top values data-value
        const stats = el("div", "atdata-samples-table-stats");
        stats.innerHTML = col.stats_html;
        stats.addEventListener("click", (event) => {
          const hit = event.target.closest("[data-bin], [data-value]");
          if (!hit) return;
          seq += 1;
          const click =
            hit.dataset.bin !== undefined
              ? { column: col.key, bin: Number(hit.dataset.bin), seq }
              : { column: col.key, value: hit.dataset.value, seq };
          model.set("filter_click", click);
          model.save_changes();
        });
        th.appendChild(stats);
      }
      header.appendChild(th);
    }
  };

  const ask = (offset, count) => {
    if (pending && pending.offset <= offset && pending.offset + pending.count >= offset + count) return;
    seq += 1;
    pending = { offset, count };
    model.set("request", { offset, count, seq });
    model.save_changes();
  };

  const cellNode = (cell, col) => {
    const td = el("div", `atdata-samples-table-td atdata-samples-table-${cell.t}`);
    if (cell.t === "num") td.classList.add("atdata-num");
    if (cell.full) td.title = cell.full;
    if (cell.t === "img" && cell.src) {
      const img = el("img", "atdata-samples-table-thumb");
      img.src = cell.src;
      img.alt = cell.v;
      td.appendChild(img);
    } else {
      td.textContent = cell.v;
    }
    td.dataset.key = col ? col.key : "";
    return td;
  };

  const drawRows = () => {
    frame = 0;
    const g = geometry();
    spacer.style.height = `${g.height}px`;
    layer.style.transform = `translateY(${body.scrollTop - g.shift}px)`;
    empty.style.display = g.n === 0 ? "" : "none";
    const cols = columns();
    const tmpl = template();
    const selected = model.get("selected");
    const nodes = [];
    let missing = -1;
    const last = Math.min(g.first + g.visible, g.n);
    for (let r = g.first; r < last; r++) {
      const row = cache.get(r);
      const tr = el("div", "atdata-samples-table-row");
      tr.style.gridTemplateColumns = tmpl;
      tr.style.height = `${rowH()}px`;
      tr.dataset.row = String(r);
      if (!row) {
        if (missing < 0) missing = r;
        tr.classList.add("atdata-samples-table-loading");
        tr.appendChild(el("div", "atdata-samples-table-td atdata-muted", "…"));
        nodes.push(tr);
        continue;
      }
      tr.dataset.index = String(row.i);
      if (row.i === selected) tr.classList.add("atdata-selected");
      row.cells.forEach((cell, j) => tr.appendChild(cellNode(cell, cols[j])));
      tr.addEventListener("click", () => {
        model.set("selected", row.i);
        model.save_changes();
      });
      nodes.push(tr);
    }
    layer.replaceChildren(...nodes);
    if (!wrap.dataset.firstPaint && nodes.length && missing < 0) {
      wrap.dataset.firstPaint = String(performance.timeOrigin + performance.now()); // the bench reads it
    }
    wrap.dataset.first = String(g.first);
    wrap.dataset.loading = String(missing >= 0);
    wrap.dataset.version = String(version);
    if (missing >= 0) {
      const pad = g.visible;
      const offset = Math.max(0, g.first - pad);
      ask(offset, Math.min(g.visible + 2 * pad, 200));
    }
  };

  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(drawRows);
  };

  const onWindow = () => {
    const w = model.get("window") || {};
    if (w.version !== model.get("version")) return;
    if (version !== w.version) {
      cache = new Map();
      version = w.version;
    }
    if (cache.size > 5000) cache = new Map();
    for (const row of w.rows || []) cache.set(row.r, row);
    if (pending && w.offset === pending.offset) pending = null;
    wrap.dataset.received = String(w.seq);
    drawRows();
  };

  const onVersion = () => {
    cache = new Map();
    pending = null;
    version = model.get("version");
    body.scrollTop = 0;
    onWindow();
  };

  body.style.height = `${model.get("body_height") || 420}px`;
  body.addEventListener("scroll", schedule);
  model.on("change:columns", () => {
    drawHeader();
    drawRows();
  });
  model.on("change:sort_key", drawHeader);
  model.on("change:descending", drawHeader);
  model.on("change:filter_column", drawHeader);
  model.on("change:window", onWindow);
  model.on("change:version", onVersion);
  model.on("change:n_rows", schedule);
  model.on("change:selected", schedule);
  drawHeader();
  version = model.get("version");
  onWindow();
  drawRows();
  if (typeof ResizeObserver !== "undefined") {
    const ro = new ResizeObserver(schedule);
    ro.observe(body);
    return () => ro.disconnect();
  }
}

export default { render };
