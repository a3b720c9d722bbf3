"""Layout rules of the widgets' stylesheets that the browser tests check rendered: numbers, sizes,
dates, names and URIs in the data tables stay on one line; the index browser's status line says
where the index is in words, not as a Python repr."""

from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")

from atdata_lab.widgets._base import read_asset  # noqa: E402
from tests.widgets.test_theme_contrast import declaration  # noqa: E402


def test_table_cells_do_not_wrap_but_subtitles_do():
    css = read_asset("atdata.css")
    for selector in (
        "table.atdata-table td.atdata-num",
        ".atdata-data-table table.atdata-table td",
        ".atdata-data-table table.atdata-table th",
    ):
        assert declaration(css, selector, "white-space") == "nowrap", selector
    assert declaration(css, ".atdata-data-table table.atdata-table td .atdata-subtitle", "white-space") == (
        "normal"
    )
    # a cell cut by its column shows its full value on hover
    assert "td.title = String(text)" in read_asset("data_table.js")


def test_status_line_names_the_index_in_words(tmp_path):
    import atdata_lab as atdata
    from atdata_lab.widgets import IndexBrowser

    idx = atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    b = IndexBrowser(idx)
    try:
        assert b.status.value == f"0 entries in the SQLite index at {tmp_path / 'index.db'}"
        assert "Provider(" not in b.status.value and "Provider(" not in b._static_html()
    finally:
        b.close()
