"""Column statistics: from the manifests and by a scan they agree on the same data; nulls; bins;
bounded memory; caching; progress; predicates from bins and top values round-trip through
ds.query; comparing two datasets' statistics; the renderers."""

from __future__ import annotations

import math
import tracemalloc
from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab import column_stats as CS
from atdata_lab import views
from atdata_lab.column_stats import ColumnStats, DatasetStats, compare_stats, dataset_stats
from atdata_lab.errors import InvalidArgumentError, ManifestNotFoundError
from atdata_lab.manifest import Predicate
from atdata_lab.progress import ProgressEvent

pytest.importorskip("pyarrow")
pytest.importorskip("pandas")

LABELS = ["cat", "dog", "bird", "fish"]


@atdata.packable
class Row:
    pixels: NDArray
    label: str
    conf: float
    n: int
    flag: bool
    tags: list[str]
    caption: str
    opt: Optional[float] = None


def rows(k: int, seed: int = 0, shift: float = 0.0, labels: list[str] = LABELS) -> list[Row]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(k):
        out.append(
            Row(
                pixels=np.zeros((4, 4 + i % 2), np.uint8),
                label=labels[int(rng.integers(0, len(labels)))],
                conf=round(float(rng.uniform(0, 1)) + shift, 3),
                n=int(rng.integers(0, 7)),
                flag=bool(rng.integers(0, 2)),
                tags=["outdoor"] * int(rng.integers(0, 3)),
                caption=f"caption {i} " + "x" * int(rng.integers(0, 20)),
                opt=None if i % 5 == 0 else float(rng.normal(10, 2)),
            )
        )
    return out


@pytest.fixture
def with_manifests(tmp_path):
    return atdata.write_samples(rows(700), tmp_path / "m" / "d", maxcount=200, manifest=True)


@pytest.fixture
def without_manifests(tmp_path):
    return atdata.write_samples(rows(700), tmp_path / "s" / "d", maxcount=200)


def same(a: ColumnStats, b: ColumnStats) -> None:
    for name in ("name", "kind", "count", "nulls", "minimum", "maximum", "histogram", "top_values"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("distinct", "lengths", "integral", "exact", "value_type"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("mean", "std"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None) and (x is None or math.isclose(x, y, rel_tol=1e-9)), name


# --------------------------------------------------------------------------- the two ways agree


def test_manifest_and_scan_agree_on_the_same_data(with_manifests, without_manifests):
    m = dataset_stats(with_manifests)
    s = dataset_stats(without_manifests)
    s2 = dataset_stats(with_manifests, source="scan")
    assert (m.source, s.source, s2.source) == ("manifest", "scan", "scan")
    assert m.n_samples == s.n_samples == 700
    assert (
        list(m.columns)
        == list(s.columns)
        == [
            "pixels",
            "label",
            "conf",
            "n",
            "flag",
            "tags",
            "caption",
            "opt",
        ]
    )
    for name in m.columns:
        if m[name].measured:
            same(m[name], s[name])
            same(m[name], s2[name])
    # arrays are not in the manifests: said so, and measured by a scan
    assert not m["pixels"].measured and m["pixels"].kind == "array" and m["pixels"].count == 700
    px = s["pixels"]
    assert px.kind == "array" and px.dtype == "uint8" and dict(px.shapes) == {(4, 4): 350, (4, 5): 350}
    assert px.lengths == (16, 18.0, 20)


def test_kinds_and_values_match_brute_force(without_manifests):
    data = rows(700)
    st = without_manifests.stats()
    labels = [r.label for r in data]
    assert st["label"].kind == "categorical" and st["label"].distinct == 4
    assert dict(st["label"].top_values) == {v: labels.count(v) for v in set(labels)}
    assert [n for _, n in st["label"].top_values] == sorted(
        (n for _, n in st["label"].top_values), reverse=True
    )
    assert st["flag"].kind == "categorical" and st["flag"].value_type == "bool"
    assert dict(st["flag"].top_values) == {
        "True": sum(r.flag for r in data),
        "False": sum(not r.flag for r in data),
    }
    assert st["caption"].kind == "text" and st["caption"].distinct == 700
    lens = [len(r.caption) for r in data]
    assert st["caption"].lengths == (min(lens), pytest.approx(sum(lens) / 700), max(lens))
    conf = np.array([r.conf for r in data])
    c = st["conf"]
    assert (c.minimum, c.maximum) == (conf.min(), conf.max())
    assert c.mean == pytest.approx(conf.mean()) and c.std == pytest.approx(conf.std())
    assert st["tags"].kind == "other" and st["tags"].lengths[2] == 2


# --------------------------------------------------------------------------- nulls


def test_nulls_are_counted(with_manifests, without_manifests):
    for ds in (with_manifests, without_manifests):
        opt = dataset_stats(ds)["opt"]
        assert opt.nulls == 140 and opt.count == 700 and opt.null_fraction == pytest.approx(0.2)
        assert sum(n for _, _, n in opt.histogram) == 560
        assert dataset_stats(ds)["label"].nulls == 0


def test_dict_samples_missing_fields_are_nulls(tmp_path):
    data = [atdata.DictSample(a=i, b=("x" if i % 2 else None)) for i in range(10)]
    data += [atdata.DictSample(a=i, c=float(i)) for i in range(10, 15)]
    ds = atdata.write_samples(data, tmp_path / "d.tar")
    st = ds.stats()
    assert st.source == "scan" and st.n_samples == 15
    assert (st["a"].count, st["a"].nulls) == (15, 0)
    assert (st["b"].count, st["b"].nulls) == (15, 10)
    assert (st["c"].count, st["c"].nulls) == (15, 10)
    assert st["c"].minimum == 10.0 and st["c"].maximum == 14.0


def test_nan_is_missing_and_inf_is_left_out_of_the_bins():
    col = CS._Column("x")
    col.add_values([1.5, float("nan"), None, 3.0, float("inf")])
    cs = col.result(4, 5)
    assert (cs.count, cs.nulls) == (5, 2)
    assert cs.maximum == math.inf and cs.histogram[-1][1] == 3.0
    assert sum(n for _, _, n in cs.histogram) == 2


# --------------------------------------------------------------------------- bins


def test_bins_are_equal_width_and_hold_every_finite_value():
    col = CS._Column("x")
    values = np.random.default_rng(1).normal(0, 1, 5000)
    col.add_numbers(values)
    cs = col.result(20, 5)
    assert len(cs.histogram) == 20
    widths = [hi - lo for lo, hi, _ in cs.histogram]
    assert max(widths) == pytest.approx(min(widths))
    assert cs.histogram[0][0] == values.min() and cs.histogram[-1][1] == values.max()
    counts, _ = np.histogram(values, bins=20, range=(values.min(), values.max()))
    assert [n for _, _, n in cs.histogram] == counts.tolist()


def test_whole_numbers_get_a_bin_per_value_and_a_constant_one_bin():
    col = CS._Column("k")
    col.add_values([0, 1, 1, 3, 3, 3])
    cs = col.result(20, 5)
    assert cs.integral
    assert cs.histogram == ((-0.5, 0.5, 1), (0.5, 1.5, 2), (1.5, 2.5, 0), (2.5, 3.5, 3))
    assert repr(cs.predicate_for_bin(3)) == "(F.k == 3)"
    const = CS._Column("c")
    const.add_values([2.5, 2.5])
    assert const.result(20, 5).histogram == ((2.5, 2.5, 2),)


def test_bad_arguments():
    ds = atdata.write_samples([atdata.DictSample(a=1)], "/tmp/unused-colstats.tar")
    with pytest.raises(InvalidArgumentError):
        dataset_stats(ds, bins=0)
    with pytest.raises(InvalidArgumentError):
        dataset_stats(ds, source="somewhere")
    with pytest.raises(ManifestNotFoundError):
        dataset_stats(ds, source="manifest")


# --------------------------------------------------------------------------- bounded memory


def test_numbers_past_the_exact_limit_go_into_a_bounded_fine_histogram(monkeypatch):
    monkeypatch.setattr(CS, "EXACT_VALUES", 1000)
    col = CS._Column("x")
    rng = np.random.default_rng(2)
    every = []
    for k in range(200):  # the range grows both ways as batches come
        batch = rng.normal(0, 1 + k / 10, 500)
        every.append(batch)
        col.add_numbers(batch)
        assert col.numbers.n_kept <= 1000 + 500
        assert col.numbers.fine is None or len(col.numbers.fine) == CS.FINE_BINS
    values = np.concatenate(every)
    cs = col.result(20, 5)
    assert not cs.exact and cs.count == len(values)
    assert (cs.minimum, cs.maximum) == (values.min(), values.max())
    exact, _ = np.histogram(values, bins=20, range=(values.min(), values.max()))
    got = np.array([n for _, _, n in cs.histogram])
    assert got.sum() == len(values)
    assert np.abs(got - exact).max() <= 0.01 * len(values)  # each bin within 1% of all values


def test_distinct_values_past_the_limit_keep_the_most_frequent(monkeypatch):
    monkeypatch.setattr(CS, "DISTINCT_MAX", 50)
    col = CS._Column("t")
    for k in range(100):
        col.add_values([f"rare {k}-{j}" for j in range(30)] + ["common"] * 5 + ["second"] * 3)
        assert len(col.values.counts) <= 2 * 50 + 38
    cs = col.result(20, 3)
    assert cs.distinct is None and not cs.exact and cs.kind == "text"
    assert cs.top_values[:2] == (("common", 500), ("second", 300))


def test_a_scan_holds_bounded_memory_whatever_the_size(tmp_path, monkeypatch):
    monkeypatch.setattr(CS, "EXACT_VALUES", 500)
    monkeypatch.setattr(CS, "DISTINCT_MAX", 100)
    held: list[CS._Column] = []
    real = CS._Column.result
    monkeypatch.setattr(CS._Column, "result", lambda self, *a: held.append(self) or real(self, *a))

    def peak(n: int) -> int:
        data = [atdata.DictSample(x=float(i), s=f"value {i} " + "z" * 200) for i in range(n)]
        ds = atdata.write_samples(data, tmp_path / f"b{n}" / "d", maxcount=2000)
        del data
        held.clear()
        tracemalloc.start()
        st = dataset_stats(ds)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert st.n_samples == n and not st["x"].exact and st["s"].distinct is None
        x, s = held
        assert x.numbers.n_kept == 0 and len(x.numbers.fine) == CS.FINE_BINS
        assert len(s.values.counts) <= 2 * 100 + CS.BATCH
        return top

    small, large = peak(4_000), peak(24_000)
    assert large < 1.5 * small  # six times the samples, not six times the memory


# --------------------------------------------------------------------------- caching and progress


def test_stats_are_computed_once_per_object(without_manifests, tmp_path, monkeypatch):
    calls = []
    real = CS._scan
    monkeypatch.setattr(CS, "_scan", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = without_manifests.stats()
    assert without_manifests.stats() is first and len(calls) == 1
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    entry = index.write(rows(50), name="small")
    got = entry.stats()
    assert entry.stats() is got and got.n_samples == 50 and len(calls) == 2
    # a derived dataset has statistics of its own
    flt = without_manifests.filter(lambda r: r.n > 3)
    assert flt.stats() is not first and flt.stats().n_samples < 700


def test_progress_events(without_manifests, with_manifests):
    events: list[ProgressEvent] = []
    dataset_stats(without_manifests, progress=events.append)
    assert all(e.task == "stats" and e.unit == "samples" for e in events)
    assert events[-1].finished and events[-1].done == 700
    dones = [e.done for e in events]
    assert dones == sorted(dones) and len(events) >= 3
    assert events[1].total == 700  # written here: the count is known without reading
    events.clear()
    dataset_stats(with_manifests, progress=events.append)
    assert events[-1].finished and events[-1].unit == "shards" and events[-1].done == 4


# --------------------------------------------------------------------------- predicates


def test_every_bin_and_top_value_round_trips_through_query(with_manifests):
    st = with_manifests.stats()
    for name in ("conf", "n", "opt"):
        cs = st[name]
        for i, (_, _, n) in enumerate(cs.histogram):
            p = cs.predicate_for_bin(i)
            assert isinstance(p, Predicate)
            assert len(with_manifests.query(where=p)) == n, (name, i, p)
    for name in ("label", "flag"):
        cs = st[name]
        for v, n in cs.top_values:
            assert len(with_manifests.query(where=cs.predicate_for_value(v))) == n
    assert repr(st["label"].predicate_for_value("cat")) == "(F.label == 'cat')"
    assert repr(st["flag"].predicate_for_value("True")) == "(F.flag == True)"
    last = st["conf"].predicate_for_bin(-1)
    assert "<=" in repr(last) and repr(st["conf"].predicate_for_bin(0)).count("<") == 1


def test_predicates_explain_what_cannot_be_queried(with_manifests):
    st = with_manifests.stats()
    with pytest.raises(InvalidArgumentError, match="filter"):
        st["pixels"].predicate_for_bin(0)
    with pytest.raises(InvalidArgumentError, match="histogram"):
        st["label"].predicate_for_bin(0)
    with pytest.raises(InvalidArgumentError, match="no bin 99"):
        st["conf"].predicate_for_bin(99)
    with pytest.raises(InvalidArgumentError, match="predicate_for_bin"):
        st["conf"].predicate_for_value("1")


# --------------------------------------------------------------------------- comparing


def test_compare_highlights_what_differs(tmp_path):
    a = atdata.write_samples(rows(400), tmp_path / "a" / "d", maxcount=200, manifest=True)
    b_rows = rows(300, seed=5, shift=3.0, labels=["cat", "dog", "zebra"])
    for r in b_rows:
        r.opt = None  # every value missing
    b = atdata.write_samples(b_rows, tmp_path / "b" / "d", maxcount=200)
    cmp = compare_stats(a.stats(), b.stats(), a_label="train", b_label="test")
    assert (cmp.a_label, cmp.b_label) == ("train", "test")
    assert {"mean", "min", "max"} <= set(cmp["conf"].changes)
    assert "nulls" in cmp["opt"].changes
    assert "values" in cmp["label"].changes
    assert any("zebra" in n for n in cmp["label"].notes) and any("bird" in n for n in cmp["label"].notes)
    assert cmp["n"].status == "same" and cmp["caption"].status == "same"
    assert cmp["pixels"].status == "same"  # measured on one side only: not judged
    text = repr(cmp)
    assert "train" in text and "*" in text and "zebra" in text
    html = cmp._repr_html_()
    assert html.count("atdata-cmp-changed") >= 3 and "atdata-cmp-diff" in html


def test_compare_new_and_missing_fields():
    x = ColumnStats("x", "numeric", 10, 0, 0.0, 1.0, 0.5)
    y = ColumnStats("y", "text", 10, 0)
    cmp = compare_stats(DatasetStats({"x": x}, 10, "scan"), DatasetStats({"x": x, "y": y}, 10, "scan"))
    assert [(f.name, f.status) for f in cmp.fields] == [("x", "same"), ("y", "added")]
    back = compare_stats(DatasetStats({"x": x, "y": y}, 10, "scan"), DatasetStats({"x": x}, 10, "scan"))
    assert back["y"].status == "removed" and [f.name for f in back.changed] == ["y"]
    assert "new field" in views.stats_comparison_text(cmp)


def test_compare_datasets_and_entries(with_manifests, without_manifests):
    cmp = CS.compare_datasets(with_manifests, without_manifests)
    assert all(f.status == "same" for f in cmp.fields)
    assert cmp.a_label == "d (4 shards)"


# --------------------------------------------------------------------------- rendering


def test_header_summary_html(with_manifests, without_manifests):
    st = with_manifests.stats()
    conf = views.column_stats_html(st["conf"])
    assert conf.count("class='atdata-colstats-bin'") == 20
    assert all(f"data-bin='{i}'" in conf for i in range(20))
    label = views.column_stats_html(st["label"])
    assert all(f"data-value='{v}'" in label for v, _ in st["label"].top_values)
    assert "no nulls" in label
    assert "null (20.0%)" in views.column_stats_html(st["opt"])
    assert "not in the manifests" in views.column_stats_html(st["pixels"])
    caption = views.column_stats_html(st["caption"])  # all different: lengths, no top values
    assert "data-value" not in caption and "length" in caption
    px = views.column_stats_html(without_manifests.stats()["pixels"])
    assert "(4, 4)" in px and "uint8" in px
    hostile = ColumnStats("x", "categorical", 1, 0, top_values=(("<script>'", 1),), distinct=1)
    assert "<script>" not in views.column_stats_html(hostile)


def test_text_forms(with_manifests):
    text = repr(with_manifests.stats())
    assert "700 samples, 8 fields (from the shards' manifests)" in text
    assert "categorical · 4 distinct" in text
    assert "\x1b" not in views.dataset_stats_text(
        DatasetStats({"e": ColumnStats("e", "text", 1, 0, top_values=(("\x1b[31m", 1),))}, 1, "scan")
    )


# --------------------------------------------------------------------------- the command line


def test_cli_stats_and_compare(capsys, tmp_path, with_manifests):
    from atdata_lab.cli import main

    b = atdata.write_samples(rows(300, seed=9, shift=4.0), tmp_path / "other" / "d", maxcount=100)
    a_glob = str(tmp_path / "m" / "d-*.tar")
    b_glob = str(tmp_path / "other" / "d-*.tar")
    capsys.readouterr()
    assert main(["stats", a_glob]) == 0
    out = capsys.readouterr().out
    # shard files load as dicts: the manifests' fields, and how to measure the others
    assert "700 samples, 7 fields (from the shards' manifests)" in out and "categorical · 4 distinct" in out
    assert "pixels" not in out and "--scan" in out
    assert main(["stats", "--scan", a_glob]) == 0
    out = capsys.readouterr().out
    assert "700 samples, 8 fields (from one pass over the samples)" in out and "(4, 4), (4, 5)" in out
    assert main(["compare", a_glob, b_glob]) == 0
    out = capsys.readouterr().out
    assert f"{a_glob} (700 samples) vs {b_glob} (300 samples)" in out
    assert "conf: mean" in out and "differences:" in out
    assert len(b.urls) == 3


@atdata.packable
class Labelled:
    label: str


@atdata.lens
def row_label(src: Row) -> Labelled:
    return Labelled(label=src.label.upper())


def test_a_lens_view_is_scanned_as_its_view_type(with_manifests):
    view = with_manifests.as_type(Labelled)
    st = view.stats()
    assert st.source == "scan" and list(st.columns) == ["label"]
    assert {v for v, _ in st["label"].top_values} == {v.upper() for v in LABELS}
    assert st["label"].top_values == tuple(
        (v.upper(), n) for v, n in with_manifests.stats()["label"].top_values
    )


def test_list_fields_held_as_arrow_lists_count_as_lists():
    pd = pytest.importorskip("pandas")
    col = CS._Column("tags", exact=True)
    series = pd.Series([np.array(["a", "b"]), np.array([], dtype=str), None])
    CS._manifest_column(col, series, {"type": "set", "all_values": ["a", "b"]})
    cs = col.result(20, 5)
    assert (cs.kind, cs.count, cs.nulls, cs.lengths) == ("other", 3, 1, (0, 1.0, 2))


def test_manifests_written_by_atdata_give_the_stats_a_scan_gives(tmp_path):
    """Shards and manifests written by the real atdata 0.7: the statistics from its manifests are
    those of one pass over its samples; the empty manifest it leaves for its last shard is noticed
    (a scan instead, or an error naming the shard when manifests are required)."""
    import json as _json
    from pathlib import Path

    from atdata_lab.errors import ManifestError
    from tests.support import atdata_reference as ref
    from tests.support.manifest_queries import make_rows
    from tests.test_manifest import LabeledSample

    ref.require_atdata_venv()
    script = Path(__file__).resolve().parent / "support" / "atdata_manifests.py"
    rows_ = make_rows(150, seed=7)
    doc = {"cmd": "write", "path": str(tmp_path / "theirs.tar"), "rows": rows_, "maxcount": 50}
    urls = [s["url"] for s in ref.run_atdata_json(script, stdin=_json.dumps(doc))["shards"]]
    whole = dataset_stats(atdata.Dataset[LabeledSample](urls))
    assert whole.source == "scan" and whole.n_samples == 150  # not the 100 its manifests hold
    with pytest.raises(ManifestError, match="theirs-000002"):
        dataset_stats(atdata.Dataset[LabeledSample](urls), source="manifest")
    m = dataset_stats(atdata.Dataset[LabeledSample](urls[:2]))
    s = dataset_stats(atdata.Dataset[LabeledSample](urls[:2]), source="scan")
    assert (m.source, s.source, m.n_samples) == ("manifest", "scan", 100)
    measured = [n for n in m.columns if m[n].measured]
    assert measured == ["label", "conf", "n", "flag", "tags", "opt"]
    for name in measured:
        same(m[name], s[name])
    assert m["opt"].nulls == sum(r["opt"] is None for r in rows_[:100]) and m["tags"].kind == "other"


def test_a_manifest_whose_count_differs_from_the_shard_is_not_used(with_manifests):
    manifests = with_manifests._load_manifests()
    manifests[1].num_samples = 7  # the writer knows the shard holds 200
    assert dataset_stats(with_manifests).source == "scan"
