"""SamplesTable driven from the kernel (no browser): windows of rows, sorting, filters from a
histogram bin / a top value / typed text, the code line, the selection (SampleLocations and a
Dataset), refused predicates, datasets without manifests, and the sample inspector's Table view."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")
pytest.importorskip("pandas")

import atdata_lab as atdata  # noqa: E402
from atdata_lab.errors import InvalidArgumentError, ManifestNotFoundError  # noqa: E402
from atdata_lab.manifest import F, SampleLocation  # noqa: E402
from atdata_lab.manifest.predicate_text import PredicateSyntaxError  # noqa: E402
from atdata_lab.widgets import SamplesTable  # noqa: E402

LABELS = ["cat", "dog", "eel"]


@atdata.packable
class Pic:
    image: NDArray
    label: str
    score: float
    idx: int
    note: str


def pics(n=60):
    return [
        Pic(
            image=np.full((12, 10), i % 256, dtype=np.uint8),
            label=LABELS[i % 3],
            score=(i * 7 % 60) / 60,
            idx=i,
            note=f"sample {i} " + "long text " * 30,
        )
        for i in range(n)
    ]


@pytest.fixture
def index(tmp_path):
    return atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))


@pytest.fixture
def entry(index):
    return index.write(pics(), name="pics", maxcount=16, progress=False, manifest=True)


@pytest.fixture
def table(entry):
    t = entry.table()
    assert t.wait_stats() is not None
    return t


def ids(rows):
    return [r["i"] for r in rows]


def test_columns_cells_and_header_statistics(table):
    assert table._dom_classes == ("atdata-widget", "atdata-samples-table")
    cols = {c["key"]: c for c in table.view.columns}
    assert list(cols) == ["#", "image", "label", "score", "idx", "note"]
    assert (
        cols["image"]["kind"] == "img" and cols["score"]["kind"] == "num" and cols["label"]["kind"] == "text"
    )
    # manifest fields sort; the image does not, and its header says why
    assert cols["score"]["sortable"] and cols["label"]["sortable"] and not cols["image"]["sortable"]
    assert "not a manifest field" in cols["image"]["why_not"] and "score" in cols["image"]["why_not"]
    # statistics from views/column_stats: clickable bars and top values
    assert "data-bin='0'" in cols["score"]["stats_html"]
    assert "data-value='cat'" in cols["label"]["stats_html"]
    assert table.stats.source == "manifest"
    row = table.rows(0, 1)[0]
    cells = dict(zip(cols, row["cells"]))
    assert cells["#"] == {"t": "num", "v": "0", "full": "0"}
    assert cells["image"]["t"] == "img" and cells["image"]["src"].startswith("data:image/png;base64,")
    assert cells["score"] == {"t": "num", "v": "0.0", "full": "0.0"}
    # long text: cut in the cell, whole on hover
    assert cells["note"]["v"].endswith("…") and len(cells["note"]["v"]) <= 80
    assert cells["note"]["full"].startswith("sample 0 long text") and len(cells["note"]["full"]) > 200
    assert "60 of 60 samples" in table.status.value
    assert table.code == "list(ds)"


def test_window_requests_read_only_the_rows_asked(table, monkeypatch):
    reads = []
    ds = table.dataset
    real = type(ds).__getitem__
    monkeypatch.setattr(type(ds), "__getitem__", lambda self, k: (reads.append(int(k)), real(self, k))[1])
    table.view.request = {"offset": 40, "count": 7, "seq": 3}
    w = table.view.window
    assert w["offset"] == 40 and w["seq"] == 3 and w["version"] == table.view.version
    assert ids(w["rows"]) == list(range(40, 47)) and [r["r"] for r in w["rows"]] == list(range(40, 47))
    assert sorted(reads) == list(range(40, 47))  # random access, only those samples
    # past the end: cut; a huge count is capped
    assert ids(table.rows(58, 10)) == [58, 59]
    assert len(table.rows(0, 10_000)) == 60


def test_sorting_on_the_kernel(table):
    table.sort("score", descending=True)
    scores = [float(r["cells"][3]["v"]) for r in table.rows(0, 60)]
    assert scores == sorted(scores, reverse=True)
    assert table.view.sort_key == "score" and table.view.descending
    # from the browser: the header click sets sort_key
    table.view.sort_key = "label"
    table.view.descending = False  # the browser sets both on a new column
    assert [r["cells"][2]["v"] for r in table.rows(0, 60)] == sorted(LABELS * 20)
    table.sort(None)
    assert ids(table.rows(0, 5)) == [0, 1, 2, 3, 4]
    # not a manifest field: refused with the hint; from the browser, the header resets
    with pytest.raises(InvalidArgumentError, match="cannot sort by 'image': image is not a manifest field"):
        table.sort("image")
    table.view.sort_key = "image"
    assert table.view.sort_key == "" and "cannot sort by 'image'" in table.errors.message


def test_filter_from_a_histogram_bin(table):
    col = table.stats.columns["score"]
    low, high, count = col.histogram[0]
    table.view.filter_click = {"column": "score", "bin": 0, "seq": 1}
    assert table.n_rows == count and table.view.n_rows == count
    assert table.filter is not None and table.view.filter_column == "score"
    got = [float(r["cells"][3]["v"]) for r in table.rows(0, 60)]
    assert got and all(low <= s <= high for s in got)
    assert table.code.startswith("ds.query(where=") and "F.score" in table.code
    assert table.code_html.value.count("F.score") >= 1 and table.copy_button.text == table.code
    assert table.query_text.value in table.code  # the typed box shows the predicate


def test_filter_from_a_top_value_and_the_code_line(table):
    table.view.filter_click = {"column": "label", "value": "cat", "seq": 2}
    assert table.code == 'ds.query(where=F.label == "cat")'
    assert table.copy_button.text == table.code
    assert ids(table.rows(0, 100)) == list(range(0, 60, 3))
    assert "20 of 60 samples" in table.status.value
    # filter and sort together
    table.sort("idx", descending=True)
    assert ids(table.rows(0, 3)) == [57, 54, 51]
    table.clear_filter()
    assert table.n_rows == 60 and table.code == "list(ds)" and table.query_text.value == ""


def test_typed_filter(table):
    table.query_text.value = 'F.label == "dog" and F.idx >= 30'
    assert ids(table.rows(0, 100)) == list(range(31, 60, 3))
    assert table.code == 'ds.query(where=(F.label == "dog") & (F.idx >= 30))'
    table.set_filter("not F.label.isin(['cat', 'dog']) or F.idx < 2")
    assert ids(table.rows(0, 100))[:3] == [0, 1, 2] and table.n_rows == 22


def test_a_malicious_typed_predicate_is_refused(table, tmp_path):
    target = tmp_path / "pwned"
    before = table.filter
    text = f"__import__('os').system('touch {target}')"
    with pytest.raises(PredicateSyntaxError, match="expected a field"):
        table.set_filter(text)
    table.query_text.value = f"F.label == open('{target}', 'w')"
    assert not target.exists() and table.filter is before and table.n_rows == 60
    assert "Filtering failed: PredicateSyntaxError: expected a value" in table.errors.message
    assert 'write a condition like F.label == "cat"' in table.errors.message


def test_selection_to_locations_and_a_dataset(table, entry):
    table.set_filter(F.label == "eel")
    sel = table.selection
    assert len(sel) == 20 and sel.indices.tolist() == list(range(2, 60, 3))
    assert sel.code == 'ds.query(where=F.label == "eel")'
    locs = sel.locations()
    assert all(isinstance(x, SampleLocation) for x in locs) and len(locs) == 20
    assert locs == entry.dataset().query(F.label == "eel")
    assert [s.idx for s in sel.samples(limit=3)] == [2, 5, 8]
    sub = sel.dataset()
    assert isinstance(sub, atdata.Dataset)
    assert [s.idx for s in sub] == list(range(2, 60, 3))
    # a filter selecting nothing: an empty dataset, an empty table
    table.set_filter(F.idx > 1000)
    assert table.n_rows == 0 and table.rows(0, 10) == [] and list(table.selection.dataset()) == []


def test_selecting_a_row_shows_its_values_in_full(table):
    table.view.selected = 7
    assert "sample 7" in table.detail.value and ("long text " * 30).strip() in table.detail.value


def test_without_manifests_rows_show_but_sort_and_filter_say_how(index):
    entry = index.write(pics(20), name="plain", maxcount=8, progress=False)
    t = entry.table()
    stats = t.wait_stats()
    assert stats is not None and stats.source == "scan"
    assert ids(t.rows(5, 3)) == [5, 6, 7]
    cols = {c["key"]: c for c in t.view.columns}
    assert not cols["score"]["sortable"] and "index.build_manifests(name)" in cols["score"]["why_not"]
    assert "data-bin='0'" in cols["score"]["stats_html"]  # statistics by one streaming pass
    with pytest.raises(InvalidArgumentError, match="Sorting needs the shards' manifests"):
        t.sort("score")
    with pytest.raises(
        ManifestNotFoundError, match="Filtering reads the shards' manifests, and 3 of 3 shard"
    ):
        t.set_filter(F.label == "cat")
    assert t.n_rows == 20


def test_ds_table_and_static_fallback(entry):
    t = entry.dataset().table(stats=False, name="train")
    assert isinstance(t, SamplesTable)
    t.set_filter(F.idx < 2)
    assert t.code == "train.query(where=F.idx < 2)"
    assert repr(t) == "SamplesTable(2 of 60 samples, filter F.idx < 2)"
    html = t._repr_mimebundle_()["text/html"]
    assert "train.query(where=F.idx &lt; 2)" in html and "<table" in html


def test_inspector_table_view_shares_the_filter(entry):
    insp = entry.inspect()
    assert insp.filter is None and len(insp.selection) == 60
    t = insp.show_table()
    t.wait_stats()
    assert insp.table_toggle.value and insp.table_panel.layout.display == "flex"
    assert insp.sample_panel.layout.display == "none"
    t.view.filter_click = {"column": "label", "value": "dog", "seq": 1}
    assert insp.filter is t.filter and insp.selection.code == 'ds.query(where=F.label == "dog")'
    insp.filter = F.idx >= 55  # code (or another view) sets the filter: the table follows
    assert ids(t.rows(0, 10)) == [55, 56, 57, 58, 59]
    t.view.selected = 57
    assert insp.k == 57
    insp.show_sample()
    assert not insp.table_toggle.value and insp.table_panel.layout.display == "none"
    assert insp.sample_panel.layout.display == "flex"
