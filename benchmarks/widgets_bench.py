"""Rows for the samples table on 1,000,000 samples, measured in a real JupyterLab in headless
Chromium (the browser tests' harness): the first paint of the table once the statistics exist,
scrolling to rows anywhere in the dataset, and a filter's round trip (a click on a top value in a
header until the filtered rows are drawn).

Each figure is browser-side wall time (the page's clock; the first paint is measured from the
kernel's clock at the cell's start, on the same machine). ``benchmarks/run.py --only widgets`` prints
the rows; run alone with ``python benchmarks/widgets_bench.py [--quick]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# JS run in the page: scroll so that row `k` is at the top, then wait until the rows in view are drawn
_SCROLL_TO = """
async (k) => {
  const wrap = document.querySelector('.atdata-samples-table-view[data-first-paint]');
  const body = wrap.querySelector('.atdata-samples-table-body');
  const rowH = 40;
  const n = Number(wrap.dataset.rows);
  const visible = Math.ceil(body.clientHeight / rowH) + 1;
  const room = Math.max(body.scrollHeight - body.clientHeight, 1);
  const t0 = performance.now();
  body.scrollTop = n * rowH <= 8000000 ? k * rowH : Math.ceil((k / Math.max(n - visible + 1, 1)) * room);
  const first = () => Number(wrap.dataset.first);
  for (;;) {
    await new Promise((r) => requestAnimationFrame(r));
    const row = wrap.querySelector(`.atdata-samples-table-row[data-row='${first()}'][data-index]`);
    if (row && wrap.dataset.loading === 'false' && Math.abs(first() - k) <= 2) break;
    if (performance.now() - t0 > 20000) return -1;
  }
  return performance.now() - t0;
}
"""

# click a top value of a header, then wait until the filtered rows are drawn
_FILTER_BY = """
async ([field, value]) => {
  const wrap = document.querySelector('.atdata-samples-table-view[data-first-paint]');
  const before = wrap.dataset.version;
  const hit = wrap.querySelector(`.atdata-samples-table-th[data-key='${field}'] [data-value='${value}']`);
  const t0 = performance.now();
  hit.click();
  for (;;) {
    await new Promise((r) => requestAnimationFrame(r));
    if (wrap.dataset.version !== before && wrap.dataset.loading === 'false'
        && wrap.querySelector('.atdata-samples-table-row[data-index]')) break;
    if (performance.now() - t0 > 20000) return -1;
  }
  return performance.now() - t0;
}
"""


def _notebook(root: Path):
    from tests.support.notebook_ui import make_notebook

    return make_notebook(
        "import glob, time\nimport atdata_lab as atdata\n"
        f"ds = atdata.Dataset(sorted(glob.glob({str(root / 'q-*.tar')!r})))\n"
        "stats = ds.stats()\nlen(ds)",
        "T0 = time.time() * 1000\ntable = ds.table()\ntable",
    )


def widget_rows(root: Path, quick: bool = False) -> list[tuple]:
    """``(figure, ours, theirs, ratio, target)`` rows for the samples table over the dataset in
    ``root`` (``benchmarks/run.py``'s manifest data: TaggedSamples in shards with manifests)."""
    from playwright.sync_api import sync_playwright

    from tests.plugins.jupyter import CHROMIUM, CHROMIUM_ARGS, JupyterLabServer
    from tests.support.notebook_ui import LabPage

    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as d:
        server = JupyterLabServer(Path(d)).start()
        pw = sync_playwright().start()
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(180_000)
            lab = LabPage(page, server, subdir="bench", timeout_s=600)
            lab.open_notebook(_notebook(root), name="samples_table_bench.ipynb")
            lab.run_all_and_wait()
            n = lab.kernel_eval("len(ds)")
            page.wait_for_selector(".atdata-samples-table-view[data-first-paint]")
            painted = float(
                page.eval_on_selector(
                    ".atdata-samples-table-view[data-first-paint]", "w => w.dataset.firstPaint"
                )
            )
            first_ms = painted - float(lab.kernel_eval("T0"))
            kernel_ms = lab.kernel_eval("table.timings['window']")
            page.eval_on_selector(
                ".atdata-samples-table-view[data-first-paint]", f"w => {{ w.dataset.rows = '{n}'; }}"
            )
            targets = (
                [n // 2, n - 20, 123_457 % n, 42, (n * 7) // 9, n // 3] if not quick else [n // 2, n - 20, 42]
            )
            times = [page.evaluate(_SCROLL_TO, k) for k in targets]
            again = [page.evaluate(_SCROLL_TO, k) for k in targets]
            filt = []
            values = lab.kernel_eval("[v for v, _ in stats.columns['category'].top_values[:3]]")
            for value in values:
                filt.append(page.evaluate(_FILTER_BY, ["category", value]))
            rows.append(
                (
                    f"samples table, {n:,} samples: first paint after the statistics exist, ms (rows read in the kernel)",
                    f"{first_ms:.0f} ({kernel_ms:.0f} for the first 30 rows)",
                    "—",
                    "—",
                    "< 1000 ms",
                )
            )
            rows.append(
                (
                    f"samples table, {n:,} samples: scroll to a row anywhere, ms (rows far apart: max / median; the same rows again: max)",
                    f"{max(times):.0f} / {statistics.median(times):.0f}; {max(again):.0f}",
                    "—",
                    "—",
                    "< 300 ms",
                )
            )
            rows.append(
                (
                    f"samples table, {n:,} samples: filter round trip (click a top value until its rows are drawn), ms (first, then median)",
                    f"{filt[0]:.0f}, {statistics.median(filt[1:]):.0f}",
                    "—",
                    "—",
                    "< 500 ms",
                )
            )
            browser.close()
        except Exception as e:  # one failed figure must not hide the others
            import traceback

            traceback.print_exc()
            rows.append(("samples table in the browser", f"failed: {e!r}"[:300], "—", "—", "—"))
        finally:
            pw.stop()
            server.stop()
    return rows


if __name__ == "__main__":
    from benchmarks.run import manifest_data

    quick = "--quick" in sys.argv
    root = manifest_data(*((1_000_000, 100) if not quick else (200_000, 20)))
    for r in widget_rows(root, quick):
        print("| " + " | ".join(r) + " |")
