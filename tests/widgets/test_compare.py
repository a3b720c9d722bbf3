"""CompareView: two datasets / entries side by side — the statistics comparison with differences
highlighted, the schema diff beside it (the SchemaDiffViewer, reused), swapping, the lazy
``ds.compare`` / ``entry.compare`` conveniences, theme-only colours with readable contrast."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.widgets import CompareView, SchemaDiffViewer
from atdata_lab.widgets._base import read_asset
from tests.widgets.test_schema_diff import assert_theme_colours
from tests.widgets.test_theme_contrast import contrast, declaration, over, resolve, theme_vars

pytest.importorskip("pyarrow")


@atdata.packable
class Photo:
    image: NDArray
    label: str
    score: float


@atdata.packable
class PhotoV2:
    image: NDArray
    label: str
    score: float
    note: Optional[str] = None


def photos(n: int, *, shift: float = 0.0, labels=("cat", "dog"), cls=Photo, **extra):
    rng = np.random.default_rng(n)
    return [
        cls(
            image=np.zeros((2, 2), np.uint8),
            label=labels[i % len(labels)],
            score=float(rng.normal(0, 1)) + shift,
            **extra,
        )
        for i in range(n)
    ]


@pytest.fixture
def index(tmp_path):
    return atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))


def test_two_datasets_side_by_side_with_the_differences_highlighted(tmp_path):
    a = atdata.write_samples(photos(200), tmp_path / "a.tar")
    b = atdata.write_samples(photos(150, shift=5.0, labels=("cat", "zebra")), tmp_path / "b.tar")
    view = a.compare(b)
    assert isinstance(view, CompareView)
    assert set(view.changed_fields) == {"score", "label"}
    html = view._stats.value
    assert "atdata-cmp-diff" in html and "zebra" in html
    assert html.count("atdata-cmp-row atdata-cmp-changed") == 2
    assert "a.tar" in view._title.value and "b.tar" in view._title.value
    # the schema diff sits beside it: the same sample type, identical
    assert isinstance(view.schema_view, SchemaDiffViewer)
    assert view.schema_view.verdict == "identical"
    assert view.schema_view in view._schema_box.children
    assert "2 of 3 fields differ" in repr(view)
    # each side's statistics are computed once and kept
    assert view.comparison.a is a.stats() and view.comparison.b is b.stats()


def test_swap_compares_the_other_way(tmp_path):
    a = atdata.write_samples(photos(50), tmp_path / "a.tar")
    b = atdata.write_samples(photos(60, shift=3.0), tmp_path / "b.tar")
    view = CompareView(a, b)
    first = view.comparison
    view.swap()
    assert (view.comparison.a_label, view.comparison.b_label) == (first.b_label, first.a_label)
    assert view.comparison.a is first.b


def test_entries_of_two_versions(index):
    v1 = index.write(photos(80), name="photos-v1", manifest=True)
    v2 = index.write(photos(80, cls=PhotoV2, labels=("cat", "dog", "owl"), note=None), name="photos-v2")
    view = v1.compare(v2)
    cmp = view.comparison
    assert (cmp.a_label, cmp.b_label) == ("photos-v1", "photos-v2")
    assert cmp.a.source == "manifest" and cmp.b.source == "scan"
    assert cmp["note"].status == "added"
    assert "note" in view.changed_fields and "label" in view.changed_fields
    assert view.schema_view.verdict == "compatible"
    assert "new field" in view._stats.value
    # the entry keeps its statistics
    assert v1.stats() is cmp.a


def test_dict_samples_have_no_schema_diff(tmp_path):
    a = atdata.write_samples([atdata.DictSample(x=i) for i in range(10)], tmp_path / "a.tar")
    b = atdata.write_samples([atdata.DictSample(x=i + 100) for i in range(10)], tmp_path / "b.tar")
    view = CompareView(a, b)
    assert view.schema_view is None
    assert "No schema diff" in view._schema_box.children[0].value
    assert "x" in view.changed_fields


def test_static_fallback_and_text(tmp_path):
    a = atdata.write_samples(photos(30), tmp_path / "a.tar")
    b = atdata.write_samples(photos(30, shift=2.0), tmp_path / "b.tar")
    view = CompareView(a, b)
    html = view._repr_html_()
    assert "atdata-stats-compare" in html and "atdata-diff-table" in html
    assert "score" in repr(view.comparison)


def test_css_uses_only_theme_colours():
    for name in ("column_stats.css", "compare.css"):
        assert_theme_colours(read_asset(name))


@pytest.mark.parametrize("theme_name", ["light", "dark"])
def test_highlighted_cells_keep_4_5_to_1_contrast(theme_name):
    theme = theme_vars(theme_name)
    css = read_asset("column_stats.css")
    page = resolve("var(--jp-layout-color1)", theme)
    for sel in (
        "table.atdata-stats-compare td.atdata-cmp-diff",
        "table.atdata-stats-compare tr.atdata-cmp-added td.atdata-cmp-diff",
        "table.atdata-stats-compare tr.atdata-cmp-removed td.atdata-cmp-diff",
    ):
        bg = over(resolve(declaration(css, sel, "background"), theme), page)
        fg = resolve(declaration(css, "table.atdata-stats-compare td.atdata-cmp-diff", "color"), theme)
        assert contrast(over(fg, bg), bg) >= 4.5, (theme_name, sel)
        assert contrast(bg, page) > 1.1, (theme_name, sel)  # the highlight shows
