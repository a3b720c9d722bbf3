"""SchemaDiff widget and its library views (atdata_lab.views): mixed inputs, the side-by-side
table, precise change names, verdicts and versions, raw records, theme-aware CSS, the shortcut."""

from __future__ import annotations

import html
import json
import re
from typing import Optional

import ipywidgets
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab import views as plan_view
from atdata_lab.schema_diff import resolve_schema
from atdata_lab.widgets._base import asset_path


@atdata.packable
class Reading:
    signal: NDArray[np.float32]
    label: int
    tags: list[int]


@atdata.packable
class ReadingV2:  # same fields plus one optional: compatible
    signal: NDArray[np.float32]
    label: int
    tags: list[int]
    note: Optional[str] = None


@atdata.packable
class ReadingV3:  # dtype, optionality, item type and kind changed, one removed, one required added
    signal: NDArray[np.float64]
    label: Optional[int]
    tags: list[str]
    extra: str


def local_record(name="Reading", version="1.0.0", **fields):
    """A local schema record dict (the index's own form)."""

    def ft(spec):
        if spec.startswith("<") or spec.startswith("|"):
            return {"$type": "local#ndarray", "dtype": spec}
        if spec.startswith("list:"):
            return {"$type": "local#array", "items": ft(spec[5:])}
        return {"$type": "local#primitive", "primitive": spec}

    out = []
    for fname, spec in fields.items():
        optional = spec.endswith("?")
        out.append({"name": fname, "fieldType": ft(spec.rstrip("?")), "optional": optional})
    return {"name": name, "version": version, "fields": out}


@pytest.fixture
def index(tmp_path):
    return atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))


def assert_theme_colours(css: str) -> None:
    """No colour in ``css`` outside ``var(--jp-..., fallback)``."""
    decls = re.findall(r"(?:color|background|border[\w-]*)\s*:\s*([^;]+);", css)
    assert decls
    for decl in decls:
        bare = re.sub(r"var\(--jp-[\w-]+(?:,\s*[^()]+)?\)", "", decl)
        assert not re.search(r"#[0-9a-fA-F]{3,8}|rgba?\(|\b(white|black|red|green|blue|grey|gray)\b", bare), (
            decl
        )


def rows_by_field(widget):
    return {r.field: r for r in widget.rows}


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------
def test_side_by_side_table_has_field_left_right_status_and_every_status(index):
    from atdata_lab.widgets import SchemaDiff

    w = SchemaDiff(Reading, ReadingV3, index=index)
    rows = rows_by_field(w)
    assert {n: r.status for n, r in rows.items()} == {
        "signal": "changed",
        "label": "changed",
        "tags": "changed",
        "extra": "added",
    }
    w2 = SchemaDiff(ReadingV3, Reading, index=index)
    assert rows_by_field(w2)["extra"].status == "removed"
    same = SchemaDiff(Reading, Reading, index=index)
    assert {r.status for r in same.rows} == {"unchanged"}

    table = w._table.value
    headers = re.findall(r"<th class='atdata-diff-col-(\w+)'>(\w+)</th>", table)
    assert [h for _, h in headers] == list(plan_view.DIFF_COLUMNS) == ["field", "left", "right", "status"]
    # each row is coloured by a status class AND says its status in words (readable without colour)
    for r in w.rows:
        m = re.search(
            rf"<tr class='atdata-diff-row atdata-diff-{r.status}' data-field='{r.field}'.*?</tr>", table
        )
        assert m, r
        assert f"<td class='atdata-diff-status'>{r.status}" in m.group(0)
    assert "ndarray&lt;f4" in table and "ndarray&lt;f8" in table  # left and right cells


def test_changes_are_named_precisely(index):
    from atdata_lab.widgets import SchemaDiff

    rows = rows_by_field(SchemaDiff(Reading, ReadingV3, index=index))
    assert rows["signal"].changes == ("dtype <f4 -> <f8",)
    assert rows["label"].changes == ("required -> optional",)
    assert rows["tags"].changes == ("list item type int -> str",)
    assert rows["signal"].status_text == "changed: dtype <f4 -> <f8"
    back = rows_by_field(SchemaDiff(ReadingV3, Reading, index=index))
    assert back["label"].changes == ("optional -> required",)
    kind = SchemaDiff(local_record(a="int"), local_record(a="str"), index=index)
    assert kind.rows[0].changes == ("kind int -> str",)
    assert "kind int -&gt; str" in kind._table.value


@pytest.mark.parametrize(
    "left, right, verdict, version",
    [
        (Reading, Reading, "identical", "1.0.0"),
        (Reading, ReadingV2, "compatible", "1.1.0"),
        (Reading, ReadingV3, "breaking", "2.0.0"),
    ],
)
def test_verdict_and_next_version(index, left, right, verdict, version):
    from atdata_lab.widgets import SchemaDiff

    w = SchemaDiff(left, right, index=index)
    assert (w.verdict, w.next_version) == (verdict, version)
    assert f"data-verdict='{verdict}'" in w._verdict.value
    assert f"data-next-version='{version}'" in w._verdict.value
    assert version in plan_view.verdict_line(w.diff)
    assert verdict in repr(w) and version in repr(w)


# ---------------------------------------------------------------------------------------------
# inputs, mixed freely
# ---------------------------------------------------------------------------------------------
def test_inputs_mixed_freely_type_ref_record_entry(index):
    from atdata_lab.widgets import SchemaDiff

    entry = index.write(
        [Reading(signal=np.zeros(4, np.float32), label=1, tags=[1])], name="r", progress=False
    )
    ref = entry.schema_ref
    record = index.get_schema(ref)
    v2 = local_record("Reading", "1.1.0", signal="<f4", label="int", tags="list:int", note="str?")
    inputs = {"type": Reading, "ref": ref, "record": record, "entry": entry}
    for a_kind, a in inputs.items():
        for b_kind, b in inputs.items():
            w = SchemaDiff(a, b, index=index)
            assert w.verdict == "identical", (a_kind, b_kind, w.rows)
        w = SchemaDiff(a, v2, index=index)
        assert (w.verdict, w.next_version, [r.field for r in w.rows if r.status == "added"]) == (
            "compatible",
            "1.1.0",
            ["note"],
        ), a_kind
    sides = {k: resolve_schema(v, index) for k, v in inputs.items()}
    assert {k: s.source for k, s in sides.items()} == {
        "type": "sample type",
        "ref": "local schema",
        "record": "schema record",
        "entry": "index entry",
    }
    # an entry's schema resolves through the entry's own index when none is given
    assert resolve_schema(entry).schema == sides["ref"].schema


def test_raw_records_sit_in_collapsible_panes(index):
    from atdata_lab.widgets import SchemaDiff

    left = local_record("Reading", "1.0.0", signal="<f4", label="int")
    right = local_record("Reading", "1.0.0", signal="<f8", label="int")
    w = SchemaDiff(left, right, index=index)
    for pane, body, record in ((w._left_pane, w._left_body, left), (w._right_pane, w._right_body, right)):
        assert isinstance(pane, ipywidgets.Accordion) and pane.selected_index is None  # collapsed
        assert json.dumps(record, indent=2) in html.unescape(body.value)
    assert "atdata-schema-diff-left-record" in w._left_pane._dom_classes
    assert "atdata-schema-diff-right-record" in w._right_pane._dom_classes


def test_swap_compares_the_other_way(index):
    from atdata_lab.widgets import SchemaDiff

    w = SchemaDiff(Reading, ReadingV2, index=index)
    w.swap()
    assert rows_by_field(w)["note"].status == "removed" and w.verdict == "breaking"


def test_bad_input_is_shown_in_the_widget_and_raised(index):
    from atdata_lab.widgets import SchemaDiff

    w = SchemaDiff(Reading, Reading, index=index)
    with pytest.raises(TypeError, match="cannot compare int"):
        w.compare(Reading, 42)
    assert w.errors.visible and "Comparing the schemas failed" in w.errors.message
    assert w.verdict == "identical"  # the last good comparison stays
    with pytest.raises(KeyError, match="no schema"):
        w.compare(Reading, "atdata://local/schema/Missing@1.0.0")


# ---------------------------------------------------------------------------------------------
# shortcut, styles, fallback
# ---------------------------------------------------------------------------------------------
def test_diff_shortcut_and_lazy_export(index):
    import atdata_lab.widgets as widgets
    from atdata_lab.widgets.schema_diff import SchemaDiff

    w = widgets.diff(Reading, ReadingV2, index=index)
    assert isinstance(w, SchemaDiff) and widgets.SchemaDiff is SchemaDiff
    assert w.verdict == "compatible"
    assert "atdata-schema-diff" in w._dom_classes and "atdata-widget" in w._dom_classes


def test_css_is_theme_aware_and_loaded():
    from atdata_lab.widgets import SchemaDiff

    css = asset_path("schema_diff.css").read_text()
    for status in ("added", "removed", "changed", "unchanged"):
        assert f".atdata-diff-{status}" in css
    # every colour comes from a JupyterLab theme variable (a literal only as the var()'s fallback)
    assert_theme_colours(css)
    w = SchemaDiff(Reading, Reading)
    assert "atdata-diff-added" in w._style.value  # the stylesheet ships with the widget


def test_static_fallback_shows_the_table_and_records(index):
    from atdata_lab.widgets import SchemaDiff

    w = SchemaDiff(Reading, ReadingV3, index=index)
    bundle = w._repr_mimebundle_()
    static = bundle["text/html"]
    assert "atdata-diff-table" in static and "changed: dtype &lt;f4 -&gt; &lt;f8" in static
    assert static.count("<details") == 2 and "breaking" in static
    assert bundle["text/plain"] == repr(w)
    assert plan_view.comparison_html(w.comparison) in static


# ---------------------------------------------------------------------------------------------
# at:// schema URIs (the real sandbox PDS)
# ---------------------------------------------------------------------------------------------
@pytest.mark.sandbox
def test_at_uri_input_against_the_real_pds(pds_account, tmp_path):
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.widgets import SchemaDiff, diff

    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(
        path=tmp_path / "p.db", atmosphere=client, data_store=atdata.LocalDiskStore(tmp_path / "d")
    )
    entry = index.write(
        [Reading(signal=np.zeros(4, np.float32), label=1, tags=[1])], name="r", progress=False
    )
    uri = index.plan_promotion("r").execute(progress=False).schema_uri
    assert uri.startswith("at://")

    w = SchemaDiff(uri, ReadingV2, index=index)
    assert (w.verdict, w.next_version) == ("compatible", "1.1.0")
    assert w.comparison.left.source == "published schema" and w.comparison.left.where == uri
    published = client.get_record(*uri.rsplit("/", 2)[1:])["value"]
    assert w.comparison.left.record == published  # the raw record exactly as the PDS holds it
    assert "schemaType" in html.unescape(w._left_body.value)
    # the sides are named once, as Name@version (the at:// URI's "Reading-1.0.0" only on hover)
    shown = re.sub(r"title='[^']*'", "", w._title.value + w._table.value)
    assert "Reading@1.0.0 &rarr; ReadingV2@1.0.0" in w._title.value
    assert shown.count("Reading@1.0.0") == 1 and "Reading-1.0.0" not in shown and "<caption>" not in shown
    assert "left: published schema" in w._title.value and f"title='{uri}'" in w._title.value
    assert w._left_pane.get_title(0) == "left record: Reading@1.0.0"
    assert w._right_pane.get_title(0) == "right record: ReadingV2@1.0.0"
    # every input kind against the at:// URI, and without an index (ATDATA_PDS_URL reads it)
    for other in (Reading, entry.schema_ref, index.get_schema(entry.schema_ref), entry):
        assert SchemaDiff(other, uri, index=index).verdict == "identical"
    assert diff(uri, Reading).verdict == "identical"


def test_wizard_css_is_theme_aware_too():
    assert_theme_colours(asset_path("promotion_wizard.css").read_text())
