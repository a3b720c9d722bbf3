"""IndexBrowser driven from the kernel (no browser): every action through its programmatic twin
and through the trait changes the front end sends, on real indexes (SQLite, and the sandbox PDS
for the Published tab)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

import atdata_lab as atdata  # noqa: E402
from atdata_lab.providers.base import ENTRY_KEYS, search_text  # noqa: E402
from atdata_lab.widgets import IndexBrowser, SampleInspector  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@atdata.packable
class Frame:
    """A tiny image sample."""

    image: NDArray
    label: int


@atdata.packable
class Measurement:
    values: NDArray
    sensor: str


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Frame(image=rng.integers(0, 255, (8, 8), dtype=np.uint8), label=i) for i in range(n)]


def measurements(n):
    return [Measurement(values=np.arange(16, dtype=np.float32) + i, sensor=f"s{i % 3}") for i in range(n)]


@pytest.fixture
def index(tmp_path):
    idx = atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    idx.write(
        frames(30),
        name="frames-train",
        maxcount=10,
        description="training frames",
        tags=["train", "img"],
        license="MIT",
        progress=False,
    )
    idx.write(
        frames(12, seed=1),
        name="frames-test",
        description="held-out frames",
        tags=["test", "img"],
        license="CC-BY-4.0",
        progress=False,
    )
    idx.write(
        measurements(50), name="exp-sensors", description="experiment run", tags=["exp"], progress=False
    )
    idx.write(measurements(5), name="exp-small", tags=["exp", "small"], license="MIT", progress=False)
    return idx


def fill(index, n, start=0):
    """Write ``n`` entry rows straight through the provider (as benchmarks/run.py does)."""
    rows = []
    for i in range(start, start + n):
        rows.append(
            {
                "name": f"dataset-{i:06d}",
                "cid": f"bafy{i}",
                "schema_ref": f"atdata://local/schema/S{i % 4}@1.0.0",
                "data_urls": [f"/d/{i}.tar"],
                "num_samples": i,
                "num_shards": 1 + i % 3,
                "size_bytes": i * 100,
                "shard_checksums": ["0" * 64],
                "metadata": {},
                "description": f"run {i}",
                "tags": ["a", f"t{i % 10}"],
                "license": "MIT" if i % 2 else "Apache-2.0",
                "created_at": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
                "published_uri": None,
            }
        )
    with index.provider._write() as c:
        c.executemany(
            f"INSERT INTO entries ({', '.join(ENTRY_KEYS)}, search_text) VALUES ({', '.join('?' * (len(ENTRY_KEYS) + 1))})",
            [
                tuple(
                    json.dumps(r[k]) if k in ("data_urls", "shard_checksums", "metadata", "tags") else r[k]
                    for k in ENTRY_KEYS
                )
                + (search_text(r),)
                for r in rows
            ],
        )


# ------------------------------------------------------------------------------------------- table
def test_table_shows_every_column(index):
    b = IndexBrowser(index)
    assert b._dom_classes == ("atdata-widget", "atdata-index-browser")
    assert [c["key"] for c in b.table.columns] == [
        "name",
        "schema",
        "samples",
        "shards",
        "size",
        "created",
        "tags",
        "license",
        "published",
    ]
    assert all(c["sortable"] for c in b.table.columns)  # every column sorts (tags by the first tag)
    assert b.names == ["exp-small", "exp-sensors", "frames-test", "frames-train"]  # newest first
    row = next(r for r in b.table.rows if r["name"] == "frames-train")
    entry = index.get_entry_by_name("frames-train")
    assert row["schema"] == "Frame@1.0.0" and row["samples"] == "30" and row["shards"] == "3"
    assert row["size"] == atdata.entry.human_bytes(entry.size_bytes) and row["size"].endswith("KB")
    assert row["tags"] == "train, img" and row["license"] == "MIT" and row["published"] == ""
    assert len(row["created"]) == 16 and row["created"][:2] == "20"
    assert b.page_label.value == "1–4 of 4" and b.prev_button.disabled and b.next_button.disabled
    assert b.table.sort_key == "created" and b.table.descending is True
    assert b.table.badges == {
        "published": {"published": "ok", "other account": "warn", "log in to check": "info"}
    }


def test_published_status_shows_a_badge_and_the_uri(index):
    """ "published" only for the attached account's DID: another account's record is not ours, and
    with no account attached there is nobody to compare with."""
    uri = "at://did:plc:abc/science.alt.dataset.entry/3kabc"
    index.provider.update_entry("exp-small", published_uri=uri)  # what a promotion records locally

    def shown(b):
        row = next(r for r in b.table.rows if r["name"] == "exp-small")
        b.select("exp-small")
        return row["published"], row["uri"]

    b = IndexBrowser(index)  # no account attached
    assert shown(b) == ("log in to check", uri) and b.table.subtitle == {"published": "uri"}
    assert "atdata-badge-info" in b.detail_title.value and uri in b.detail_title.value
    assert "published by did:plc:abc (log in to check that it is yours)" in b.detail_meta.value
    index.atmosphere = types.SimpleNamespace(did="did:plc:abc", handle="abc.test")  # the publisher
    b.refresh()
    assert shown(b) == ("published", uri) and "atdata-badge-ok" in b.detail_title.value
    assert uri in b.detail_meta.value
    index.atmosphere = types.SimpleNamespace(did="did:plc:xyz", handle="xyz.test")  # someone else
    b.refresh()
    assert shown(b) == ("other account", uri) and "atdata-badge-warn" in b.detail_title.value
    assert "not published by this account (published by did:plc:abc)" in b.detail_meta.value
    index.atmosphere = None
    assert b.filter_schema(None) and [e.name for e in index.search(published=True)] == ["exp-small"]


def test_search_name_description_and_tags(index):
    b = IndexBrowser(index)
    assert [e.name for e in b.search("frames")] == ["frames-test", "frames-train"]
    assert b.names == ["frames-test", "frames-train"] and b.search_box.value == "frames"
    assert b.search("held-out").total == 1 and b.names == ["frames-test"]  # description
    assert set(b.search("small").__iter__().__next__().tags) >= {"small"} and b.names == ["exp-small"]  # tag
    assert b.search("nothing-like-this").total == 0 and b.table.rows == []
    assert b.page_label.value == "0 of 0" and b.table.empty_text == "No entries match"
    b.search("")
    assert len(b.names) == 4


def test_typing_in_the_search_box_is_debounced(index):
    b = IndexBrowser(index, debounce=0.15)
    for text in ("e", "ex", "exp"):  # keystrokes arrive as value changes from the front end
        b.search_box.value = text
    assert b._debouncer.calls == 0 and len(b.names) == 4
    deadline = time.monotonic() + 5
    while b._debouncer.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)
    assert b._debouncer.calls == 1 and b.query == "exp"
    assert b.names == ["exp-small", "exp-sensors"]


def test_filter_by_schema(index):
    b = IndexBrowser(index)
    assert b.schema_dropdown.options == (
        ("All schemas", ""),
        ("Frame", "Frame"),
        ("Measurement", "Measurement"),
    )
    b.filter_schema("Measurement")
    assert b.names == ["exp-small", "exp-sensors"]
    b.schema_dropdown.value = "Frame"  # the front end's path
    assert b.schema_filter == "Frame" and b.names == ["frames-test", "frames-train"]
    b.search("test")
    assert b.names == ["frames-test"]  # search and filter combine
    b.schema_dropdown.value = ""
    assert b.schema_filter is None and b.names == ["frames-test"]


@pytest.mark.parametrize(
    "column", ["name", "schema", "samples", "shards", "size", "created", "license", "published"]
)
def test_sort_by_every_sortable_column_matches_the_index(index, column):
    from atdata_lab.views import ENTRY_COLUMNS

    sort = next(c.sort for c in ENTRY_COLUMNS if c.key == column)
    b = IndexBrowser(index)
    b.sort_by(column)
    assert b.table.sort_key == column and b.table.descending is False
    assert b.names == [e.name for e in index.search(sort=sort, descending=False)]
    b.sort_by(column)  # again: reversed
    assert b.table.descending is True
    assert b.names == [e.name for e in index.search(sort=sort, descending=True)]


def test_header_clicks_reach_the_index(index):
    b = IndexBrowser(index)
    with b.table.hold_trait_notifications():  # what one header click sends
        b.table.sort_key = "samples"
        b.table.descending = False
    assert (b.sort, b.descending) == ("num_samples", False)
    assert b.names == ["exp-small", "frames-test", "frames-train", "exp-sensors"]
    b.table.descending = True
    assert b.names == ["exp-sensors", "frames-train", "frames-test", "exp-small"]
    b.sort_by("tags")  # every column sorts, tags by their first tag
    firsts = [(e.tags or [""])[0] for e in b.page]
    assert firsts == sorted(firsts, reverse=b.descending)
    with pytest.raises(ValueError, match="cannot sort by 'bogus'; sortable columns: name, schema"):
        b.sort_by("bogus")
    assert "cannot sort by 'bogus'" in b.errors.message


def test_paging(index):
    fill(index, 100)
    b = IndexBrowser(index, page_size=25, sort="name", descending=False)
    assert b.page_label.value == "1–25 of 104" and b.prev_button.disabled and not b.next_button.disabled
    assert b.names[0] == "dataset-000000" and len(b.table.rows) == 25
    b.next_page()
    assert b.page_label.value == "26–50 of 104" and b.names[0] == "dataset-000025" and b.page_number == 2
    b.next_button.click()
    b.next_button.click()
    b.next_button.click()
    assert b.page_label.value == "101–104 of 104" and b.next_button.disabled
    assert b.names == ["exp-sensors", "exp-small", "frames-test", "frames-train"]
    b.next_page()  # stays on the last page
    assert b.page_number == 5
    b.prev_button.click()
    assert b.page_label.value == "76–100 of 104"
    b.goto_page(1)
    assert b.prev_button.disabled
    b.goto_page(99)
    assert b.page_number == 5
    b.search("run 1")  # a search starts from the first page
    assert b.page_number == 1 and b.page.total == 11  # "run 1" and "run 10".."run 19" (descriptions)


def bounded(sql: str) -> bool:
    """A statement reading entry rows reads one page at most: LIMIT, or a lookup of named rows."""
    if (
        not sql.lstrip().upper().startswith("SELECT")
        or "FROM ENTRIES" not in sql.upper()
        or "COUNT(" in sql.upper()
    ):
        return True
    if " LIMIT " in sql:
        return True
    return (
        " name IN (" in sql
        and sql.count("'dataset-") + sql.count("'exp-") + sql.count("'frames-") <= 25
        or "WHERE name = " in sql
    )


def test_ten_thousand_entries_render_and_search_fast(index):
    fill(index, 10_000)
    statements: list[str] = []
    index.provider.conn.set_trace_callback(statements.append)
    IndexBrowser(index)  # warm: imports, first widget classes
    statements.clear()
    renders, keystrokes = [], []
    for _ in range(5):
        t = time.perf_counter()
        b = IndexBrowser(index)
        renders.append((time.perf_counter() - t) * 1000)
    # paging is the index's (SQL side): a 25-row page and a count, never every row
    assert any(" LIMIT 25 OFFSET 0" in s for s in statements)
    assert all(bounded(s) for s in statements), [s for s in statements if not bounded(s)]
    assert len(b.table.rows) == 25 and b.page_label.value == "1–25 of 10,004"
    for text in ("r", "ru", "run", "run ", "run 9", "run 99", "run 999"):
        statements.clear()
        t = time.perf_counter()
        b.search(text)
        keystrokes.append((time.perf_counter() - t) * 1000)
        assert any(" LIMIT 25 OFFSET 0" in s for s in statements) and all(bounded(s) for s in statements)
    assert b.page_label.value == "1–11 of 11"
    statements.clear()
    t = time.perf_counter()
    b.search("")
    b.sort_by("size")
    b.goto_page(200)
    page_ms = (time.perf_counter() - t) * 1000
    assert b.page_label.value == "4,976–5,000 of 10,004" and any(
        "LIMIT 25 OFFSET 4975" in s for s in statements
    )
    index.provider.conn.set_trace_callback(None)
    print(
        f"\n10k entries: first render {statistics.median(renders):.1f} ms (median of 5, max {max(renders):.1f}), "
        f"search keystroke {statistics.median(keystrokes):.1f} ms (max {max(keystrokes):.1f}), "
        f"sort+page {page_ms:.1f} ms"
    )
    # the budget is 200 ms of kernel time; measured ~10 ms here
    assert statistics.median(renders) < 200 and max(keystrokes) < 200


# ------------------------------------------------------------------------------------------- detail
def test_select_opens_the_detail_panel(index):
    b = IndexBrowser(index)
    assert b.detail.layout.display == "none"
    entry = b.select("frames-train")
    assert entry.name == "frames-train" and b.selected == entry and b.table.selected == "frames-train"
    assert b.detail.layout.display == "flex"
    meta = b.detail_meta.value
    for text in (
        "training frames",
        "atdata://local/schema/Frame@1.0.0",
        "30",
        entry.cid,
        "not published",
        "train, img",
        "MIT",
    ):
        assert text in meta
    fields = b.detail_fields.value
    assert "Schema Frame@1.0.0" in fields
    assert "<td>image</td><td>ndarray</td><td>uint8</td><td>(8, 8)</td><td>no</td>" in fields
    assert "<td>label</td><td>int</td><td></td><td></td><td>no</td>" in fields
    shards = b.detail_shards.value
    assert "Shards (3)" in shards
    for url, checksum in zip(entry.data_urls, entry.shard_checksums):
        assert url in shards and checksum in shards
    size = index.get_shards(entry)[0]["size"]
    assert atdata.entry.human_bytes(size) in shards


def test_row_clicks_select(index):
    b = IndexBrowser(index)
    b.table.selected = "exp-sensors"  # what a row click sends
    assert b.selected.name == "exp-sensors" and "Schema Measurement@1.0.0" in b.detail_fields.value
    # an entry deleted by another kernel after the page loaded: a readable error, not a crash
    index.delete_entry("frames-test")
    b.table.selected = "frames-test"
    assert b.errors.visible
    assert (
        b.errors.message
        == "Opening 'frames-test' failed: EntryNotFoundError: no dataset named 'frames-test' in "
        + repr(index.provider)
    )
    with pytest.raises(KeyError):
        b.select("frames-test")


def test_actions_need_a_selection(index):
    b = IndexBrowser(index)
    with pytest.raises(ValueError, match="no entry is selected"):
        b.inspect_selected()
    assert b.errors.message.startswith(
        "Opening the sample inspector failed: InvalidArgumentError: no entry is selected"
    )
    b.inspect_button.click()  # the same from the button: shown, not raised
    assert b.errors.visible


def test_inspect_samples_opens_the_inspector(index):
    b = IndexBrowser(index)
    b.select("frames-train")
    insp = b.inspect_selected()
    assert isinstance(insp, SampleInspector) and b.action_widget is insp
    assert b.action_area.layout.display == "flex" and insp in b.action_area.children
    assert (
        insp.n == 30
        and insp.entry.name == "frames-train"
        and insp.fields == {"image": "image", "label": "int"}
    )
    insp.next()
    assert insp.k == 1
    b.close_action_button.click()
    assert b.action_widget is None and b.action_area.layout.display == "none"


def test_diff_schema_offers_other_versions(index):
    @atdata.packable
    class Frame:  # noqa: F811 - a new version of the same schema name
        image: NDArray
        label: int
        note: str | None = None

    index.write([Frame(image=np.zeros((8, 8), np.uint8), label=1)], name="frames-v2", progress=False)
    b = IndexBrowser(index)
    b.select("frames-v2")
    assert b.selected.schema_ref == "atdata://local/schema/Frame@1.1.0"
    assert b.diff_against.options == (("Frame@1.0.0 (local)", "atdata://local/schema/Frame@1.0.0"),)
    assert not b.diff_button.disabled
    b.select("exp-small")
    assert b.diff_button.disabled and b.diff_against.value == ""
    with pytest.raises(ValueError, match="Measurement@1.0.0 has no other version"):
        b.diff_selected()


def test_diff_schema_opens_the_diff_viewer(index):
    pytest.importorskip(
        "atdata_lab.widgets.schema_diff", reason="the schema diff viewer (issue 6) is not there yet"
    )

    @atdata.packable
    class Frame:  # noqa: F811
        image: NDArray
        label: int
        note: str | None = None

    index.write([Frame(image=np.zeros((8, 8), np.uint8), label=1)], name="frames-v2", progress=False)
    b = IndexBrowser(index)
    b.select("frames-v2")
    b.diff_button.click()
    assert not b.errors.visible, b.errors.message
    w = b.action_widget
    assert type(w).__name__ == "SchemaDiffViewer" and w in b.action_area.children
    assert "Frame@1.0.0 → Frame@1.1.0" in b.action_title.value


def test_missing_widget_modules_say_not_available(index, monkeypatch):
    # Python's own way to make an import fail: a None entry in sys.modules
    monkeypatch.setitem(sys.modules, "atdata_lab.widgets.schema_diff", None)
    monkeypatch.setitem(sys.modules, "atdata_lab.widgets.promotion_wizard", None)

    @atdata.packable
    class Frame:  # noqa: F811
        image: NDArray
        label: int
        note: str | None = None

    index.write([Frame(image=np.zeros((8, 8), np.uint8), label=1)], name="frames-v2", progress=False)
    b = IndexBrowser(index)
    b.select("frames-v2")
    assert b.diff_selected() is None
    assert b.errors.visible and b.errors.message.startswith(
        "Not available: The schema diff viewer is not available yet"
    )
    assert b.promote_selected() is None
    assert b.errors.message.startswith("Not available: The promotion wizard is not available yet")
    assert b.action_widget is None


def test_promote_opens_the_wizard_prefilled(index):
    pytest.importorskip(
        "atdata_lab.widgets.promotion_wizard", reason="the promotion wizard (issue 6) is not there yet"
    )
    b = IndexBrowser(index)
    b.select("exp-sensors")
    b.promote_button.click()
    assert not b.errors.visible, b.errors.message
    w = b.action_widget
    assert type(w).__name__ == "PromotionWizard" and w.entry.name == "exp-sensors" and w.index is index


# ------------------------------------------------------------------------------------------- refresh
def test_refresh_sees_other_kernels(index, tmp_path):
    b = IndexBrowser(index)
    b.select("exp-small")
    gen = b.generation
    code = textwrap.dedent(f"""
        import numpy as np
        import atdata_lab as atdata
        idx = atdata.Index(path={str(tmp_path / "index.db")!r}, data_store=atdata.LocalDiskStore({str(tmp_path / "data")!r}))
        idx.write([atdata.DictSample({{"x": np.zeros(3)}})], name="from-another-kernel", tags=["other"], progress=False)
        idx.delete_entry("exp-small")
    """)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
    assert "from-another-kernel" not in b.names  # nothing changes by itself
    assert index.generation() > gen
    b.refresh_button.click()
    assert not b.errors.visible, b.errors.message
    assert b.names[0] == "from-another-kernel" and "exp-small" not in b.names and b.generation > gen
    assert b.selected is None and b.detail.layout.display == "none"  # the selected entry was deleted
    assert ("DictSample", "DictSample") not in b.schema_dropdown.options
    assert ("from-another-kernel", "from-another-kernel") in b.schema_dropdown.options  # its inferred schema


# ------------------------------------------------------------------------------------------- fallback
def test_static_fallback(index):
    b = IndexBrowser(index, page_size=2)
    bundle = b._repr_mimebundle_()
    assert bundle["text/plain"] == "IndexBrowser(1–2 of 4 entries, sorted by created_at descending)"
    html = bundle["text/html"]
    assert "exp-small" in html and "exp-sensors" in html and "frames-train" not in html
    assert "entries 1–2 of 4" in html and "<th>Samples</th>" in html and "A static view" in html
    b.search("frames")
    assert "search 'frames'" in repr(b)


def test_no_published_tab_without_an_atmosphere(index):
    b = IndexBrowser(index)
    assert b.tabs is None and b.published_tab is None
    with pytest.raises(ValueError, match="needs an index with an atmosphere"):
        b.show_tab("published")
    with pytest.raises(ValueError, match="no tab 'x'"):
        b.show_tab("x")
    b.show_tab("local")


# ------------------------------------------------------------------------------------------- published
@pytest.mark.sandbox
def test_published_tab_lists_records_and_verifies(pds_account, tmp_path):
    from atdata_lab.atmosphere import Atmosphere

    client = Atmosphere.login(pds_account.handle, pds_account.password)
    index = atdata.Index(
        path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"), atmosphere=client
    )
    index.write(frames(20), name="frames-pub", maxcount=10, progress=False)
    index.write(frames(5), name="frames-local", progress=False)
    uri = index.promote_entry("frames-pub", description="published frames", license="MIT", progress=False)

    b = IndexBrowser(index)
    assert b.tabs is not None and b.tabs.get_title(1) == "Published" and b.published is None  # loaded lazily
    row = next(r for r in b.table.rows if r["name"] == "frames-pub")
    assert row["published"] == "published" and row["uri"] == uri

    b.tabs.selected_index = 1  # the front end switching tabs loads the records
    assert not b.errors.visible, b.errors.message
    kinds = {r["kind"]: r for r in b.records_table.rows}
    assert set(kinds) == {"dataset", "schema", "label"}
    assert kinds["dataset"]["uri"] == uri and kinds["dataset"]["name"] == "frames-pub"
    assert kinds["schema"]["name"] == "Frame" and kinds["schema"]["uri"].startswith(f"at://{client.did}/")
    assert f"3 records in the repository of {client.handle}" in b.published_status.value

    b.records_table.selected = kinds["schema"]["uri"]  # a row click
    assert b.verify_button.disabled  # only dataset records verify
    assert "schema record" in b.record_detail.value and "Frame" in b.record_detail.value
    rec = b.select_record(uri)
    raw = json.loads(__import__("html").unescape(b.record_detail.value.split("<pre>")[1].split("</pre>")[0]))
    assert raw == rec["value"] and raw["name"] == "frames-pub"
    assert (
        uri in b.record_detail.value and rec["cid"] in b.record_detail.value and not b.verify_button.disabled
    )

    report = b.verify().wait(120)
    # kept at local file paths: every check passes but "loadable by others", and the badge says so
    assert report.failed == ["loadable by others"], str(report)
    deadline = time.monotonic() + 10
    while "only loadable on this machine" not in b.verify_output.value and time.monotonic() < deadline:
        time.sleep(0.05)
    out = b.verify_output.value
    assert "only loadable on this machine" in out and "every other check passed" in out
    assert "verification failed" not in out and "atdata-badge-warn" in out
    assert "entry record present" in out and "load_dataset(" in __import__("html").unescape(out)
    assert b.verification is report and not b.verify_button.disabled

    # a second dataset published by another kernel shows up on Reload
    index2 = atdata.Index(
        path=tmp_path / "index.db",
        data_store=atdata.LocalDiskStore(tmp_path / "data"),
        atmosphere=Atmosphere.login(pds_account.handle, pds_account.password),
    )
    uri2 = index2.promote_entry("frames-local", progress=False)
    b.published_refresh.click()
    assert uri2 in [r["uri"] for r in b.records_table.rows]
    assert next(r for r in b.table.rows if r["name"] == "frames-local")["published"] == "published"


# ------------------------------------------------------------------------------------------- same kernel
def test_entries_written_in_the_same_kernel_show_without_refresh(index):
    """After every notebook cell the browser checks the index's generation: an entry written (or its
    license changed) by a cell shows up without pressing Refresh. A real IPython shell runs the cells."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        b = IndexBrowser(index)
        shell.user_ns.update(index=index, frames=frames)
        assert "fresh" not in b.names
        shell.run_cell("index.write(frames(3), name='fresh', progress=False)")
        assert "fresh" in b.names and b.errors.message == ""
        b.select("exp-small")
        shell.run_cell("index.provider.update_entry('exp-small', license='CC0-1.0')")
        assert b.selected.license == "CC0-1.0" and "CC0-1.0" in b.detail_meta.value
        assert b.table.rows[b.names.index("exp-small")]["license"] == "CC0-1.0"
        gen = b.generation
        shell.run_cell("x = 1")  # nothing changed: nothing reloaded
        assert b.generation == gen and not b.refresh_if_changed()
        b.close()
        assert not any(
            getattr(f, "__qualname__", "").startswith("_follow_cells")
            for f in shell.events.callbacks["post_run_cell"]
        )
    finally:
        InteractiveShell.clear_instance()
