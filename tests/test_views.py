"""atdata_lab.views: the pure helpers the widgets render (no widget, no browser)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import atdata_lab as atdata
from atdata_lab import views as S
from atdata_lab.entry import IndexEntry
from atdata_lab.progress import ProgressEvent
from atdata_lab.schema import Schema


def test_counts_and_page_labels():
    assert S.format_count(10000) == "10,000" and S.format_count(None) == "?"
    assert S.page_label(0, 25, 10000) == "1–25 of 10,000"
    assert S.page_label(9975, 25, 10000) == "9,976–10,000 of 10,000"
    assert S.page_label(0, 0, 0) == "0 of 0"
    assert S.format_created("2026-01-31T14:05:09.123456+00:00") == "2026-01-31 14:05"
    assert S.format_created("not a date") == "not a date" and S.format_created(None) == ""
    assert S.schema_label("atdata://local/schema/Img@1.2.0") == "Img@1.2.0"
    assert S.shard_label("/data/x/x-000001.tar") == "x-000001.tar"
    assert S.shard_label("s3://bucket/a/b-000000.tar") == "b-000000.tar"


def _entry(**kw):
    base = dict(
        name="exp-1",
        cid="bafyx",
        schema_ref="atdata://local/schema/Exp@2.0.0",
        data_urls=["/d/a.tar", "/d/b.tar"],
        num_samples=1234,
        size_bytes=3 * 1024 * 1024,
        created_at="2026-02-03T04:05:06+00:00",
        tags=["a", "b"],
        license="MIT",
        description="first run",
        metadata={"k": 1},
    )
    base.update(kw)
    return IndexEntry(**base)


def test_entry_row_and_detail():
    row = S.entry_row(_entry())
    assert row == {
        "name": "exp-1",
        "schema": "Exp@2.0.0",
        "samples": "1,234",
        "shards": "2",
        "size": "3.0 MB",
        "created": "2026-02-03 04:05",
        "tags": "a, b",
        "license": "MIT",
        "published": "",
        "uri": "",
    }
    pub = S.entry_row(_entry(published_uri="at://did:plc:x/science.alt.dataset.entry/3k"))
    assert pub["published"] == "published" and pub["uri"].startswith("at://")
    detail = dict(S.entry_detail_rows(_entry()))
    assert (
        detail["Published"] == "not published"
        and detail["Metadata"] == '{"k": 1}'
        and detail["CID"] == "bafyx"
    )
    # no empty "Metadata" row when the entry has none
    assert "Metadata" not in dict(S.entry_detail_rows(_entry(metadata={})))
    # every column the table shows has a row key; every sortable one maps to an index sort column
    from atdata_lab.providers.base import SORT_COLUMNS

    assert {c.key for c in S.ENTRY_COLUMNS} <= set(row)
    assert all(c.sort in SORT_COLUMNS for c in S.ENTRY_COLUMNS if c.sort)


def test_schema_field_rows():
    from numpy.typing import NDArray

    @atdata.packable
    class Rows:
        image: NDArray[np.uint8]
        names: list[str]
        note: str | None = None

    schema = Schema.from_type(Rows).with_hints({"image": "|u1"}, {"image": (8, 6, 3)})
    assert S.schema_field_rows(schema) == [
        {"name": "image", "kind": "ndarray", "dtype": "uint8", "shape": "(8, 6, 3)", "optional": "no"},
        {"name": "names", "kind": "list[str]", "dtype": "", "shape": "", "optional": "no"},
        {"name": "note", "kind": "str", "dtype": "", "shape": "", "optional": "yes"},
    ]


def test_shard_record_verification_and_progress_rows():
    assert S.shard_rows([{"url": "/a.tar", "size": 2048, "checksum": "ab", "num_samples": 5}]) == [
        {"url": "/a.tar", "samples": "5", "size": "2.0 KB", "checksum": "ab"}
    ]
    published = {
        "entries": [{"uri": "at://d/e/1", "cid": "c1", "value": {"name": "ds"}}],
        "schemas": [{"uri": "at://d/s/1", "cid": "c2", "value": {"name": "S", "version": "1.0.0"}}],
        "labels": [],
    }
    assert [(r["kind"], r["name"], r["version"]) for r in S.record_rows(published)] == [
        ("dataset", "ds", ""),
        ("schema", "S", "1.0.0"),
    ]

    class Report:
        checks = [("entry record present", True, "at://x"), ("data reachable", False, "404")]

    assert [r["status"] for r in S.verification_rows(Report())] == ["ok", "failed"]
    assert (
        S.progress_text(ProgressEvent("write", 500, 1000, "samples", "shard 2"))
        == "write: 500 / 1,000 samples · shard 2"
    )
    assert S.progress_text(ProgressEvent("copy", 1536, None, "bytes", finished=True)) == "copy: 1.5 KB · done"


def test_diff_candidates():
    recs = [
        {
            "$ref": "atdata://local/schema/S@1.0.0",
            "name": "S",
            "version": "1.0.0",
            "publishedUri": "at://d/s/1",
        },
        {"$ref": "atdata://local/schema/S@2.0.0", "name": "S", "version": "2.0.0"},
        {"$ref": "atdata://local/schema/S@1.1.0", "name": "S", "version": "1.1.0"},
        {"$ref": "atdata://local/schema/T@1.0.0", "name": "T", "version": "1.0.0"},
    ]
    got = S.diff_candidates(recs, "atdata://local/schema/S@2.0.0")
    assert [v for _, v in got] == [
        "atdata://local/schema/S@1.1.0",
        "atdata://local/schema/S@1.0.0",
        "at://d/s/1",
    ]
    mine = S.diff_candidates(recs, "atdata://local/schema/S@1.0.0")
    assert mine[0] == ("S@1.0.0 as published (at://d/s/1)", "at://d/s/1")
    assert S.diff_candidates(recs, "atdata://local/schema/T@1.0.0") == []


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "none"),
        (True, "bool"),
        (3, "int"),
        (np.int64(3), "int"),
        (2.5, "float"),
        ("x", "str"),
        (b"\x00", "bytes"),
        ([1], "list"),
        ({"a": 1}, "dict"),
        (np.float32(1.0), "float"),
        (np.array(3.0), "scalar"),
        (np.zeros(0), "empty"),
        (np.zeros((0, 4)), "empty"),
        (np.zeros(64), "line"),
        (np.zeros((8, 6)), "image"),
        (np.zeros((8, 6, 3)), "image"),
        (np.zeros((3, 8, 6)), "image"),
        (np.zeros((8, 6, 4)), "image"),
        (np.zeros((1, 8, 6)), "image"),
        (np.zeros((5, 6, 7)), "volume"),
        (np.zeros((2, 3, 8, 8)), "volume"),
        (np.array(["a", "b"]), "array"),
        (np.zeros((4, 4), dtype=bool), "image"),
        (object(), "other"),
    ],
)
def test_classify(value, kind):
    assert S.classify(value) == kind


def test_image_layout():
    assert S.image_layout((8, 6)) == "HW"
    assert S.image_layout((8, 6, 3)) == "HWC" and S.image_layout((8, 6, 1)) == "HWC"
    assert S.image_layout((3, 8, 6)) == "CHW" and S.image_layout((4, 8, 6)) == "CHW"
    assert S.image_layout((5, 6, 7)) is None and S.image_layout((64,)) is None
    assert S.image_layout((3, 3, 3)) == "HWC"  # ambiguous: channels last wins


def test_array_stats_and_histogram():
    a = np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 3.0], dtype=np.float32)
    st = S.array_stats(a)
    assert (st.min, st.max, st.mean, st.nan, st.inf) == (1.0, 3.0, 2.0, 1, 2)
    assert st.std == pytest.approx(np.std([1.0, 2.0, 3.0]))
    assert st.badge == "float32 (6,)" and st.dtype == "<f4"
    assert dict(st.rows())["NaN"] == "1" and dict(st.rows())["Inf"] == "2"
    ints = S.array_stats(np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert (ints.min, ints.max, ints.nan, ints.badge) == (0.0, 11.0, 0, "uint8 (3, 4)")
    allnan = S.array_stats(np.full(3, np.nan))
    assert allnan.min is None and allnan.nan == 3 and dict(allnan.rows())["min"] == "—"
    assert S.array_stats(np.array(["a"])).min is None
    assert S.array_stats(np.array([1 + 1j, 3 + 4j])).max == 5.0

    counts, edges = S.histogram(a, bins=4)
    assert counts.sum() == 3 and edges[0] == 1.0 and edges[-1] == 3.0
    flat, _ = S.histogram(np.full(10, 7.0))
    assert flat.sum() == 10
    assert len(S.histogram(np.full(3, np.nan))[0]) == 0
    svg = S.histogram_svg([1, 0, 5], [0.0, 1.0, 2.0, 3.0])
    assert svg.startswith("<svg") and svg.count("<rect") == 3 and "currentColor" in svg
    assert "no finite values" in S.histogram_svg([])


def test_hex_json_and_values():
    assert S.hex_preview(b"") == "0 bytes"
    assert S.hex_preview(b"\x00\x01\xff") == "3 bytes: 00 01 ff"
    assert S.hex_preview(bytes(range(100)), 4) == "100 bytes: 00 01 02 03 …"
    nested = {
        "a": [1, 2.5, None],
        "arr": np.arange(3, dtype=np.int16),
        "big": np.zeros((100, 100)),
        "raw": b"\x01\x02",
        "nan": float("nan"),
        "np": np.float32(1.5),
    }
    parsed = json.loads(S.json_preview(nested))
    assert parsed["a"] == [1, 2.5, None]
    assert parsed["arr"] == {"ndarray": "<i2[3]", "values": [0, 1, 2]}
    assert parsed["big"] == {"ndarray": "<f8[100, 100]"}
    assert parsed["raw"] == {"bytes": "2 bytes: 01 02"} and parsed["nan"] == "nan" and parsed["np"] == 1.5
    long = json.loads(S.json_preview(list(range(500)), max_items=10))
    assert long[:10] == list(range(10)) and long[10] == "… 490 more items"
    assert S.value_text(None) == "None" and S.value_text(0.1) == "0.1" and S.value_text(np.int8(3)) == "3"


def test_sample_fields_and_header():
    from numpy.typing import NDArray

    @atdata.packable
    class Two:
        x: NDArray
        name: str

    s = Two(x=np.zeros(2), name="n")
    assert [n for n, _ in S.sample_fields(s)] == ["x", "name"]
    assert S.sample_fields(atdata.DictSample({"a": 1, "b": "z"})) == [("a", 1), ("b", "z")]
    assert (
        S.sample_header(10, 1000, "k10", "/d/data-000000.tar")
        == "sample 10 of 1,000 (numbered 0–999) · key k10 · shard data-000000.tar"
    )
    assert S.sample_header(0, 1, "k", "/d/a.tar") == "sample 0 of 1 · key k · shard a.tar"
    assert S.uses_colormap(np.zeros((3, 4))) and S.uses_colormap(np.zeros((3, 4, 1)))
    assert S.uses_colormap(np.zeros((1, 3, 5))) and S.uses_colormap(np.zeros((5, 3, 7)))  # CHW, volume
    assert not S.uses_colormap(np.zeros((3, 4, 3))) and not S.uses_colormap(np.zeros((2, 3, 4, 4)))
    assert not S.uses_colormap(np.zeros(5)) and not S.uses_colormap("text")


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


def test_to_rgba_layouts_and_scaling():
    gray = np.arange(12, dtype=np.float64).reshape(3, 4)
    rgba = S.to_rgba(gray, "gray")
    assert rgba.shape == (3, 4, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0, 0] == 0 and rgba[2, 3, 0] == 255 and (rgba[..., 3] == 255).all()
    # viridis differs from gray
    assert not np.array_equal(S.to_rgba(gray, "viridis"), rgba)
    # uint8 RGB stays as it is; CHW is moved to HWC; RGBA keeps alpha
    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(S.to_rgba(rgb)[..., :3], rgb)
    assert np.array_equal(S.to_rgba(np.moveaxis(rgb, -1, 0))[..., :3], rgb)
    four = np.zeros((2, 2, 4), dtype=np.uint8)
    four[..., 3] = 7
    assert (S.to_rgba(four)[..., 3] == 7).all()
    # float RGB is scaled over all channels; NaN/Inf show as the lowest value
    f = np.zeros((2, 2, 3), dtype=np.float32)
    f[0, 0] = [2.0, 4.0, np.nan]
    out = S.to_rgba(f)
    assert out[0, 0, 1] == 255 and out[0, 0, 2] == 0 and out[1, 1, 0] == 0
    const = S.to_rgba(np.full((2, 2), 5.0), "gray")
    assert (const[..., 0] == 0).all()
    assert S.to_rgba(np.full((2, 2), np.nan), "gray").shape == (2, 2, 4)
    with pytest.raises(ValueError, match="not an image"):
        S.to_rgba(np.zeros((5, 6, 7)))
    with pytest.raises(ValueError, match="unknown colormap 'nope'"):
        S.to_rgba(gray, "nope")
    assert set(S.colormaps()) >= {"viridis", "gray"}


def test_png_bytes_and_thumbnails():
    img = S.to_rgba(np.zeros((8, 6)), "gray")
    png = S.png_bytes(img)
    assert png.startswith(b"\x89PNG") and _png_size(png) == (6, 8)
    assert _png_size(S.png_bytes(img, min_size=64)) == (48, 64)  # nearest-neighbour integer upscaling
    big = S.to_rgba(np.zeros((400, 200)), "gray")
    assert _png_size(S.png_bytes(big, max_size=100)) == (50, 100)
    assert _png_size(S.thumbnail_png(np.zeros((400, 200)), 96)) == (48, 96)
    assert S.thumbnail_png(np.zeros((2, 5, 6, 7)), 96) is not None  # a volume: its first slice
    assert S.thumbnail_png(np.zeros(10)) is None


def test_slices_and_line_points():
    assert S.slice_axes((5, 6, 7)) == [0]
    assert S.slice_axes((2, 3, 8, 8)) == [0, 1]
    assert S.slice_axes((2, 8, 8, 3)) == [0]  # channels last stay in the image
    vol = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert np.array_equal(S.take_slice(vol, [1, 2]), vol[1, 2])
    assert np.array_equal(S.take_slice(vol, [9, -3]), vol[1, 0])  # clamped
    assert np.array_equal(S.take_slice(vol, []), vol[0, 0])
    x, y = S.line_points(np.arange(10))
    assert list(x) == list(range(10)) and list(y) == list(range(10))
    x, y = S.line_points(np.arange(10_001), max_points=1000)
    assert len(x) == len(y) <= 1000 and y[-1] > 9_900


# ---------------------------------------------------------------------------------------------
# plain text (what the command line prints)
# ---------------------------------------------------------------------------------------------
def test_plain_text_tables_and_masked_urls():
    assert S.plain("a\x1b[31mb\nc\x9bd") == "a\\x1b[31mb\\x0ac\\x9bd" and S.plain(None) == ""
    assert S.plain("abcdef", 4) == "abc…"
    assert S.text_table(["name", "n"], [["x", 1], ["long\tname", 1234]], right=[1]).splitlines() == [
        "name             n",
        "x                1",
        "long\\x09name  1234",
    ]
    assert S.kv_text([("Name", "x"), ("Samples", "1,000"), ("Empty", "")]) == (
        "Name:     x\nSamples:  1,000\nEmpty:"
    )
    assert S.kv_text([]) == ""
    assert S.masked_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert S.masked_url("postgresql://me:pw@db/x") == "postgresql://me:***@db/x"
    assert S.masked_url("redis://host:6379/0") == "redis://host:6379/0" and S.masked_url("/a/b") == "/a/b"
    assert S.shape_text((64,)) == "(64,)" and S.shape_text((2, None)) == "(2, ?)" and S.shape_text(()) == "()"


def test_value_summaries_never_dump_arrays():
    big = np.arange(1_000_000, dtype=np.float32).reshape(1000, 1000)
    text = S.value_summary(big)
    assert text == "ndarray float32 (1000, 1000) min 0 max 999999 mean 500000 std 288675"
    assert S.value_summary(np.array([np.nan, 1.0, np.inf])).endswith("NaN 1 Inf 1")
    assert S.value_summary(np.array(3)) == "ndarray int64 () = 3"
    assert S.value_summary(np.zeros((0, 3))) == "ndarray float64 (0, 3) (empty)"
    assert S.value_summary(np.array(["a", "b"])) == "ndarray <U1 (2,)"
    assert S.value_summary(b"\x00\x01" * 40).startswith("80 bytes: 00 01")
    assert S.value_summary("x" * 1000) == "'" + "x" * 198 + "…" and len(S.value_summary("x" * 1000)) == 200
    assert S.value_summary("\x1b[2J") == "'\\x1b[2J'"
    assert S.value_summary(list(range(100))).startswith("list of 100: [0, 1, 2")
    assert S.value_summary({"a": np.zeros(100)}) == 'dict of 1: {"a": {"ndarray": "<f8[100]"}}'
    assert (S.value_summary(3.5), S.value_summary(None), S.value_summary(True)) == ("3.5", "None", "True")
    sample = atdata.DictSample({"x": np.ones(4), "name": "n"})
    assert S.sample_text(sample, "sample 0 of 1") == (
        "sample 0 of 1\n  x:     ndarray float64 (4,) min 1 max 1 mean 1 std 0\n  name:  'n'"
    )


def test_entry_and_description_text():
    entry = _entry(shard_checksums=["ab" * 32, ""])
    text = S.entry_text(entry, sample_type="Exp@2.0.0", storage="2 URL(s)")
    rows = dict(line.split(":", 1) for line in text.split("\n\n")[0].splitlines())
    assert rows["Sample type"].strip() == "Exp@2.0.0" and rows["Storage"].strip() == "2 URL(s)"
    assert rows["Checksums"].strip() == "sha256 for 1 of 2 shards" and rows["Samples"].strip() == "1,234"
    shards = text.split("\n\n")[1].splitlines()
    assert shards[0] == "Shards (2)" and shards[1].split() == ["url", "sha256"]  # nothing else is known
    assert shards[2].split() == ["/d/a.tar", "abababababababab…"] and shards[3].split() == ["/d/b.tar"]
    assert S.checksum_text([], 3) == "none"
    desc = {
        "sample_type": "DictSample",
        "shards": 1,
        "samples": 4,
        "bytes": 2048,
        "fields": [
            {"name": "x", "kind": "ndarray", "dtype": "<f4", "shape": [3]},
            {"name": "y", "kind": "int"},
        ],
    }
    out = S.description_text(desc, [{"url": "/d/x.tar", "num_samples": 4, "size": 2048}], where="/d/*.tar")
    assert "Sample type:  DictSample (shard files carry no schema)" in out and "Size:         2.0 KB" in out
    assert "  x      ndarray  <f4    (3,)" in out and "  /d/x.tar        4  2.0 KB" in out


def test_schema_and_comparison_text():
    from numpy.typing import NDArray

    from atdata_lab.schema_diff import compare_schemas

    @atdata.packable
    class Old:
        image: NDArray
        label: int

    @atdata.packable
    class New:
        image: NDArray
        label: int
        note: str | None = None

    text = S.schema_text(Schema.from_type(Old), "sample type tests.Old")
    assert text.splitlines()[:2] == ["Schema:  Old@1.0.0", "From:    sample type tests.Old"]
    assert text.splitlines()[-2].split() == ["image", "ndarray", "any", "no"]
    out = S.comparison_text(compare_schemas(Old, New))
    assert out.splitlines()[-2:] == ["Verdict:       compatible", "Next version:  1.1.0"]
    assert [line.split()[0] for line in out.splitlines() if line.startswith("  ")] == [
        "field",
        "image",
        "label",
        "note",
    ]


def test_dtype_text_and_provider_label(tmp_path):
    assert S.dtype_text("|u1") == "uint8" and S.dtype_text("<f4") == "float32"
    assert S.dtype_text("<i8") == "int64" and S.dtype_text("?") == "bool"
    assert S.dtype_text(">f4") == "float32 (big-endian)"
    assert S.dtype_text(None) == "" and S.dtype_text("not-a-dtype") == "not-a-dtype"
    idx = atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    label = S.provider_label(idx.provider)
    assert label == f"SQLite index at {tmp_path / 'index.db'}" and "Provider(" not in label

    class RedisProvider:
        where = "redis://:s3cret@host:6379/0"

    assert S.provider_label(RedisProvider()) == "Redis index at redis://:***@host:6379/0"
