"""Per-shard manifests: what goes in, round trips, queries against brute force, reading k hits
with k reads (on disk and over a real local HTTP server), publishing with the shards, building
them later, statistics in describe(), and bad manifests."""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
import tempfile
from collections import Counter, OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab import dataset as dataset_mod
from atdata_lab.errors import (
    AtdataLabError,
    InvalidArgumentError,
    ManifestError,
    ManifestNotFoundError,
    MissingDependencyError,
    SampleKeyError,
    ShardError,
)
from atdata_lab.manifest import (
    MANIFEST_FORMAT_VERSION,
    CategoricalAggregate,
    F,
    ManifestBuilder,
    ManifestField,
    ManifestWriter,
    NumericAggregate,
    Predicate,
    QueryExecutor,
    SampleLocation,
    SetAggregate,
    ShardManifest,
    create_aggregate,
    query_fields,
    resolve_manifest_fields,
)
from atdata_lab.manifest import shard_manifest as sm
from atdata_lab.manifest.aggregates import merge_aggregates
from atdata_lab.manifest.query import load_manifests
from atdata_lab.stores.local import FileSink
from tests.reliability.hostile import LoopbackServer, file_host
from tests.support.manifest_queries import QUERIES, brute_force, make_rows, to_where

pytest.importorskip("pyarrow")
pytest.importorskip("pandas")


@atdata.packable
class LabeledSample:
    pixels: NDArray
    label: str
    conf: float
    n: int
    flag: bool
    tags: list[str]
    opt: Optional[float] = None


def sample_of(row: dict) -> LabeledSample:
    return LabeledSample(**{**row, "pixels": np.asarray(row["pixels"], dtype=np.uint8)})


ROWS = make_rows(100)


def shards_of(rows: list[dict], per: int, stem: str) -> list[tuple[str, list[str], list[dict]]]:
    return [
        (f"{stem}-{i // per:06d}", [f"{j:06d}" for j in range(i, min(i + per, len(rows)))], rows[i : i + per])
        for i in range(0, len(rows), per)
    ]


@pytest.fixture
def written(tmp_path):
    return atdata.write_samples([sample_of(r) for r in ROWS], tmp_path / "d", maxcount=25, manifest=True)


# ------------------------------------------------------------------------------------ fields


def test_fields_explicit_inferred_and_excluded():
    @atdata.packable
    class T:
        image: NDArray
        raw: bytes
        meta: dict
        label: Annotated[str, ManifestField("categorical")]
        code: Annotated[int, ManifestField("categorical")]
        secret: Annotated[str, ManifestField("categorical", exclude=True)]
        score: float
        count: int
        ok: bool
        tags: list[str]
        bare: list
        arrays: list[NDArray]
        maybe: Optional[float] = None

    got = {n: f.aggregate for n, f in resolve_manifest_fields(T).items()}
    # as atdata 0.7 resolves the same class: primitives by kind, list[T] a set, arrays/bytes/dicts
    # and a bare list out, explicit markers win
    assert got == {
        "label": "categorical",
        "code": "categorical",
        "score": "numeric",
        "count": "numeric",
        "ok": "categorical",
        "tags": "set",
        "maybe": "numeric",
    }
    assert list(got) == ["label", "code", "score", "count", "ok", "tags", "maybe"]
    with pytest.raises(ValueError, match="categorical"):
        ManifestField("histogram")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="packable"):
        resolve_manifest_fields(dict)
    q = query_fields(T)
    assert isinstance(q.score > 1, Predicate) and "score" in repr(q)
    with pytest.raises(AttributeError, match="no manifest field 'scroe'"):
        q.scroe  # noqa: B018


def test_aggregates_as_atdata_writes_them():
    c = create_aggregate("categorical")
    for v in ["dog", "cat", "dog", True]:
        c.add(v)
    assert c.to_dict() == {
        "type": "categorical",
        "cardinality": 3,
        "value_counts": {"dog": 2, "cat": 1, "True": 1},
    }
    n = create_aggregate("numeric")
    assert n.to_dict() == {"type": "numeric", "min": math.inf, "max": -math.inf, "mean": 0.0, "count": 0}
    for v in (1, 3.0, 2):
        n.add(v)
    assert n.to_dict() == {"type": "numeric", "min": 1.0, "max": 3.0, "mean": 2.0, "count": 3}
    s = create_aggregate("set")
    s.add(["b", "a"])
    s.add([1])
    assert s.to_dict() == {"type": "set", "all_values": ["1", "a", "b"]}
    assert (
        isinstance(c, CategoricalAggregate)
        and isinstance(n, NumericAggregate)
        and isinstance(s, SetAggregate)
    )
    with pytest.raises(ValueError, match="unknown aggregate kind"):
        create_aggregate("median")
    with pytest.raises(ValueError, match="not a number"):
        n.add("many")
    merged = merge_aggregates(
        [n.to_dict(), {"type": "numeric", "min": -1.0, "max": 0.0, "mean": -0.5, "count": 2}]
    )
    assert merged == {"type": "numeric", "min": -1.0, "max": 3.0, "mean": 1.0, "count": 5}
    assert merge_aggregates([c.to_dict(), n.to_dict()]) is None  # kinds disagree


# ------------------------------------------------------------------------------------ round trips

VALUES = {
    "s": st.text(max_size=8),
    "i": st.integers(-(2**62), 2**62),
    "f": st.floats(allow_nan=False, allow_infinity=False),
    "b": st.booleans(),
    "tags": st.lists(st.sampled_from(["x", "y", "z", "é", ""]), max_size=3),
    "nums": st.lists(st.integers(-5, 5), max_size=3),
    "oi": st.none() | st.integers(-100, 100),
    "os": st.none() | st.sampled_from(["p", "q"]),
}


@atdata.packable
class Kinds:
    s: str
    i: int
    f: float
    b: bool
    tags: list[str]
    nums: list[int]
    oi: Optional[int] = None
    os: Optional[str] = None


def expected_aggregate(kind: str, values: list) -> dict:
    present = [v for v in values if v is not None]
    if kind == "categorical":
        counts = Counter(str(v) for v in present)
        return {"type": "categorical", "cardinality": len(counts), "value_counts": dict(counts)}
    if kind == "numeric":
        fl = [float(v) for v in present]
        total = 0.0
        for v in fl:
            total += v
        return {
            "type": "numeric",
            "min": min(fl, default=math.inf),
            "max": max(fl, default=-math.inf),
            "mean": total / len(fl) if fl else 0.0,
            "count": len(fl),
        }
    return {"type": "set", "all_values": sorted({str(x) for v in present for x in v})}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.fixed_dictionaries(VALUES), min_size=1, max_size=30),
    per=st.integers(1, 12),
    threshold=st.integers(-100, 100),
)
def test_round_trip_over_field_kinds(rows, per, threshold):
    with tempfile.TemporaryDirectory() as tmp:
        ds = atdata.write_samples([Kinds(**r) for r in rows], Path(tmp) / "k", maxcount=per, manifest=True)
        kinds = {n: f.aggregate for n, f in resolve_manifest_fields(Kinds).items()}
        assert kinds == {"s": "categorical", "i": "numeric", "f": "numeric", "b": "categorical"} | {
            "tags": "set",
            "nums": "set",
            "oi": "numeric",
            "os": "categorical",
        }
        ex = QueryExecutor.from_directory(tmp)
        assert [m.shard_url for m in ex._manifests] == ds.urls
        for k, m in enumerate(ex._manifests):
            part = rows[k * per : (k + 1) * per]
            assert m.num_samples == len(part) and m.size_bytes == os.path.getsize(ds.urls[k])
            assert m.shard_id == f"k-{k:06d}" and m.schema_type == "Kinds"
            for name, kind in kinds.items():
                assert m.aggregates[name] == expected_aggregate(kind, [r[name] for r in part]), name
            df = m.samples
            assert df["__key__"].tolist() == [f"{j:06d}" for j in range(k * per, k * per + len(part))]
            for name in kinds:
                got = [None if (isinstance(v, float) and math.isnan(v)) else v for v in df[name].tolist()]
                assert got == [r[name] for r in part], name
            info = ds.shard_info(ds.urls[k])
            assert df["__data_offset__"].tolist() == info.offsets[:, 0].tolist()
            assert df["__size__"].tolist() == info.offsets[:, 1].tolist()
            assert (df["__data_offset__"] - df["__offset__"]).eq(512).all()
        # queries over the values just written, against a filter in plain Python
        want = [r["i"] for r in rows if r["oi"] is not None and r["oi"] > threshold]
        hits = ds.query(where=F.oi > threshold)
        assert [s.i for s in ds.select(hits)] == want
        want = [r["i"] for r in rows if "x" in r["tags"] or r["b"]]
        hits = ds.query(where=lambda df: df["tags"].apply(lambda t: "x" in t) | df["b"])
        assert [s.i for s in ds.select(hits)] == want


# ------------------------------------------------------------------------------------ queries


@pytest.mark.parametrize("spec", QUERIES, ids=[json.dumps(q) for q in QUERIES])
def test_query_equals_brute_force(written, spec):
    hits = written.query(where=to_where(spec, F))
    assert [(h.shard, h.key) for h in hits] == brute_force(spec, shards_of(ROWS, 25, "d"))
    assert [s.n for s in written.select(hits)] == [int(h.key) for h in hits]


def _ops(spec: list) -> set[str]:
    if spec[0] in ("and", "or", "not"):
        return {spec[0]}.union(*(_ops(s) for s in spec[1:]))
    return {spec[0] if spec[0] != "lambda" else "lambda"}


def test_every_operator_has_a_query_that_selects_something(written):
    ops = set().union(*(_ops(q) for q in QUERIES))
    assert ops == {"eq", "ne", "lt", "le", "gt", "ge", "isin", "between", "not", "and", "or", "lambda"}
    sizes = [len(written.query(where=to_where(q, F))) for q in QUERIES]
    assert sum(1 for n in sizes if 0 < n < 100) >= 15 and 0 in sizes


def test_a_predicate_skips_shards_its_statistics_rule_out(written, monkeypatch):
    reads: list[str] = []
    real = sm.rows_from_parquet

    def counting(data, where, expected):
        reads.append(where)
        return real(data, where, expected)

    monkeypatch.setattr(sm, "rows_from_parquet", counting)
    ds = atdata.Dataset[LabeledSample](written.urls)
    assert ds.query(where=F.n > 1_000) == [] and reads == []  # every shard's max n is below
    assert ds.query(where=F.label == "zebra") == [] and reads == []  # no shard has the value
    hits = ds.query(where=(F.n >= 30) & (F.n < 45))
    assert [h.key for h in hits] == [f"{i:06d}" for i in range(30, 45)]
    assert [Path(r).name for r in reads] == ["d-000001.manifest.parquet"]
    assert len(ds.query(where=lambda df: df["n"] >= 0)) == 100  # a lambda reads every shard's rows
    assert len(reads) == 4


def test_query_misuse_is_named(written):
    with pytest.raises(TypeError, match="between"):
        written.query(where=0.2 < F.conf < 0.5)
    with pytest.raises(TypeError, match="another field"):
        F.conf > F.opt  # noqa: B015
    with pytest.raises(TypeError, match="boolean mask"):
        written.query(where=lambda df: df["conf"])
    with pytest.raises(TypeError, match="where="):
        written.query(where="conf > 0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no manifest field 'conff'"):
        written.query(where=F.conff > 0.5)
    assert written.fields.conf is not None and isinstance(written.fields.label == "x", Predicate)
    assert repr((F.a > 1) & ~F.b.isin(["x"])) == "((F.a > 1) & ~F.b.isin(['x']))"


# ------------------------------------------------------------------------------------ reading hits


def forget_offsets(monkeypatch) -> None:
    """No offset index of any shard is known, and scanning one fails the test."""
    monkeypatch.setattr(dataset_mod, "_scan_cache", OrderedDict())
    monkeypatch.setattr(dataset_mod, "scan_shard", lambda *a, **k: pytest.fail("a shard was scanned"))


def test_select_reads_k_hits_with_k_reads(written, monkeypatch):
    forget_offsets(monkeypatch)
    ds = atdata.Dataset[LabeledSample](written.urls)
    hits = ds.query(where=(F.label == "dog") & (F.conf > 0.5))
    reads: list[tuple[int, int]] = []
    real = dataset_mod.read_range

    def counting(url, offset, size, opts=None):
        reads.append((offset, size))
        return real(url, offset, size, opts)

    monkeypatch.setattr(dataset_mod, "read_range", counting)
    got = ds.select(hits)
    want = [r for r in ROWS if r["label"] == "dog" and r["conf"] > 0.5]
    assert [s.n for s in got] == [r["n"] for r in want] and len(want) >= 5
    assert got[0].pixels.tolist() == want[0]["pixels"]
    assert len(reads) == len(hits)
    assert all(size < 1024 for _, size in reads)  # one member each, never a whole shard
    reads.clear()
    assert ds.get("000042").n == 42 and len(reads) == 1  # a key found through the manifests
    assert ds.get(hits[-1]).n == want[-1]["n"] and len(reads) == 2
    with pytest.raises(SampleKeyError, match="no sample has key"):
        ds.get("nope")
    with pytest.raises(TypeError, match="mix"):
        ds.select([hits[0], 3])


def test_select_over_http_is_one_range_request_per_hit(written, tmp_path):
    files = {f"/{p.name}": p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with LoopbackServer(file_host(files)) as host:
        urls = [f"{host.url}/{Path(u).name}" for u in written.urls]
        ds = atdata.Dataset[LabeledSample](urls)
        hits = ds.query(where=F.n.isin([3, 31, 77, 78]))
        assert host.count(".tar") == 0  # the query read manifests only
        assert host.count(".manifest.json") == 4 and host.count(".manifest.parquet") == 3  # d-000002 skipped
        before = list(host.requests)
        got = ds.select(hits)
        assert [s.n for s in got] == [3, 31, 77, 78]
        new = host.requests[len(before) :]
        assert len(new) == 4 and all(
            r.path.endswith(".tar") and r.headers["range"].startswith("bytes=") for r in new
        )
        for r, h in zip(new, hits):
            start, end = (int(x) for x in r.headers["range"][6:].split("-"))
            assert start == h.offset and end - start + 1 == h.data_offset - h.offset + h.size
        assert ds.get("000050").n == 50 and host.count(".tar") == 5


def test_a_location_that_does_not_match_the_shard_is_refused(written, tmp_path):
    ds = atdata.Dataset[LabeledSample](written.urls)
    hit = ds.query(where=F.n == 30)[0]
    with pytest.raises(ManifestError, match="not where its manifest says"):
        ds.select(
            [
                SampleLocation(
                    hit.shard, "000031", hit.offset, url=hit.url, data_offset=hit.data_offset, size=hit.size
                )
            ]
        )
    with pytest.raises(ManifestError, match="no shard member"):
        ds.get(
            SampleLocation(
                hit.shard, hit.key, hit.data_offset, url=hit.url, data_offset=hit.data_offset, size=5
            )
        )
    with pytest.raises(SampleKeyError, match="not a shard of this dataset"):
        ds.get(SampleLocation("elsewhere-000000", "000001", 0))
    # a location by shard id alone (atdata's three fields) is found, through the shard's offset index
    assert ds.get(SampleLocation("d-000001", "000030", 0)).n == 30
    # the shard was written again with other samples: its old manifest no longer matches it
    atdata.write_samples([sample_of(r) for r in make_rows(25, seed=99)[::-1]], tmp_path / "d-000001.tar")
    with pytest.raises(ManifestError, match="rebuild"):
        atdata.Dataset[LabeledSample](written.urls).select([hit])


# ------------------------------------------------------------------------------------ publishing


def test_each_shard_is_published_after_its_complete_manifest(tmp_path, monkeypatch):
    seen: list[str] = []
    real = FileSink.commit

    def watching(self):
        name = self.path.name
        if name.endswith(".tar"):
            base = str(self.path)[:-4]
            assert os.path.exists(base + ".manifest.json") and os.path.exists(base + ".manifest.parquet"), (
                name
            )
        elif name.endswith(".manifest.json"):
            assert os.path.exists(str(self.path)[: -len(".json")] + ".parquet"), name
        seen.append(name)
        return real(self)

    monkeypatch.setattr(FileSink, "commit", watching)
    atdata.write_samples([sample_of(r) for r in ROWS[:50]], tmp_path / "p", maxcount=20, manifest=True)
    assert seen == [
        n
        for i in range(3)
        for n in (f"p-{i:06d}.manifest.parquet", f"p-{i:06d}.manifest.json", f"p-{i:06d}.tar")
    ]


def test_a_failing_manifest_leaves_no_shard_without_one(tmp_path, monkeypatch):
    real = sm.parquet_bytes
    calls = []

    def failing(df):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(df)

    monkeypatch.setattr(sm, "parquet_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        atdata.write_samples(
            [sample_of(r) for r in ROWS[:50]], tmp_path / "o" / "f", maxcount=20, manifest=True
        )
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["f-000000.manifest.json", "f-000000.manifest.parquet", "f-000000.tar"]  # no shard 1, 2


def test_manifests_need_pyarrow_and_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'atdata-lab\[manifest\]'") as err:
        atdata.write_samples([sample_of(ROWS[0])], tmp_path / "o" / "x", manifest=True)
    assert isinstance(err.value, ImportError) and isinstance(err.value, AtdataLabError)
    assert not (tmp_path / "o").exists()  # checked before anything was written


# ------------------------------------------------------------------------------------ index


def test_index_write_with_manifests_and_delete(tmp_path):
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "store"))
    entry = index.write([sample_of(r) for r in ROWS], name="lab", maxcount=30, manifest=True, progress=False)
    folder = tmp_path / "store" / "lab"
    assert sorted(p.name for p in folder.glob("*.manifest.json")) == [
        f"lab-{i:06d}.manifest.json" for i in range(4)
    ]
    header = json.loads((folder / "lab-000000.manifest.json").read_text())
    assert header["schema_version"] == entry.schema_ref.rsplit("@", 1)[1]
    assert header["manifest_version"] == MANIFEST_FORMAT_VERSION
    ds = index.dataset("lab")
    for spec in QUERIES:
        assert [(h.shard, h.key) for h in ds.query(where=to_where(spec, F))] == brute_force(
            spec, shards_of(ROWS, 30, "lab")
        )
    index.delete_entry("lab", delete_data=True)
    assert not folder.exists() or not any(folder.iterdir())


def test_build_manifests_later_is_resumable_and_checks_checksums(tmp_path, monkeypatch):
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "store"))
    index.write([sample_of(r) for r in ROWS], name="plain", maxcount=30, progress=False)
    ds = index.dataset("plain")
    with pytest.raises(ManifestNotFoundError, match=r"build_manifests") as err:
        ds.query(where=F.n > 3)
    assert isinstance(err.value, FileNotFoundError)
    from atdata_lab import index as index_mod

    real = index_mod.manifest_of_shard
    calls: list[str] = []

    def interrupted(url, *a, **k):
        calls.append(url)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(url, *a, **k)

    monkeypatch.setattr(index_mod, "manifest_of_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index.build_manifests("plain", progress=False)
    monkeypatch.setattr(index_mod, "manifest_of_shard", real)
    urls = index.get_entry_by_name("plain").data_urls
    Path(urls[3][:-4] + ".manifest.parquet").write_bytes(
        b"left by an interrupted build"
    )  # no header: an orphan
    got = index.build_manifests("plain", progress=False)
    assert got == {"built": urls[2:], "skipped": urls[:2]}
    assert index.build_manifests("plain", progress=False) == {"built": [], "skipped": urls}
    ds = index.dataset("plain")
    for spec in QUERIES:
        assert [(h.shard, h.key) for h in ds.query(where=to_where(spec, F))] == brute_force(
            spec, shards_of(ROWS, 30, "plain")
        )
    # built afterwards or while writing: the same manifest (but for when it was made)
    same = atdata.write_samples(
        [sample_of(r) for r in ROWS[:30]], tmp_path / "w" / "plain-000000.tar", manifest=True
    )
    a = json.loads(Path(urls[0][:-4] + ".manifest.json").read_text())
    b = json.loads(Path(same.urls[0][:-4] + ".manifest.json").read_text())
    a.pop("created_at"), b.pop("created_at")
    assert a == b
    # a shard whose bytes no longer match its entry gets no manifest
    Path(urls[1][:-4] + ".manifest.json").unlink()
    raw = bytearray(Path(urls[1]).read_bytes())
    raw[-1] ^= 1  # past the end-of-archive block: every sample still decodes, the checksum differs
    Path(urls[1]).write_bytes(bytes(raw))
    with pytest.raises(ShardError, match="checksum"):
        index.build_manifests("plain", progress=False)
    assert not Path(urls[1][:-4] + ".manifest.json").exists()


# ------------------------------------------------------------------------------------ describe


def test_describe_shows_statistics_from_the_headers(written, monkeypatch):
    forget_offsets(monkeypatch)
    ds = atdata.Dataset[LabeledSample](written.urls)
    d = ds.describe()
    assert d["samples"] == 100 and d["shards"] == 4 and d["manifest_shards"] == 4
    stats = d["manifest"]
    assert stats["n"] == {"type": "numeric", "min": 0.0, "max": 99.0, "mean": 49.5, "count": 100}
    assert stats["label"]["value_counts"] == dict(Counter(r["label"] for r in ROWS))
    assert stats["tags"]["all_values"] == sorted({t for r in ROWS for t in r["tags"]})
    assert stats["opt"]["count"] == sum(r["opt"] is not None for r in ROWS)
    text = repr(d)
    assert text.startswith("Dataset[LabeledSample]: 100 samples in 4 shards")
    assert "n      numeric      min 0 · max 99 · mean 49.5 (100 values)" in text
    html = d._repr_html_()
    assert "atdata-manifest-stats" in html and "<td>label</td>" in html
    plain = atdata.write_samples([sample_of(r) for r in ROWS[:5]], Path(written.urls[0]).parent / "plain")
    assert plain.describe()["manifest"] is None and "no manifests" in repr(plain.describe())


# ------------------------------------------------------------------------------------ files


def test_atdata_style_builder_writer_and_files(tmp_path):
    b = ManifestBuilder(sample_type=LabeledSample, shard_id="x-000000", source_job_id="job-1")
    for i, r in enumerate(ROWS[:5]):
        b.add_sample(key=f"k{i}", offset=i * 100, size=90, sample=sample_of(r))
    m = b.build()
    assert m.num_samples == 5 and m.size_bytes == 450 and m.provenance == {"source_job_id": "job-1"}
    jp, pp = ManifestWriter(tmp_path / "x-000000").write(m)
    assert (jp.name, pp.name) == ("x-000000.manifest.json", "x-000000.manifest.parquet")
    back = ShardManifest.from_files(jp, pp)
    assert back.samples.columns.tolist() == [
        "__key__",
        "__offset__",
        "__size__",
        *resolve_manifest_fields(LabeledSample),
    ]
    assert back.samples["tags"].tolist() == [r["tags"] for r in ROWS[:5]]
    assert ShardManifest.from_json_only(jp).samples.empty
    hits = QueryExecutor([back]).query(where=F.n >= 3)
    assert hits == [SampleLocation("x-000000", "k3", 300), SampleLocation("x-000000", "k4", 400)]
    assert hits[0].data_offset is None  # atdata's rows do not say where the bytes are


def _write_manifest(base: Path, header: Any, parquet: bytes | None = None) -> None:
    Path(str(base) + ".manifest.json").write_bytes(
        header if isinstance(header, bytes) else json.dumps(header).encode()
    )
    if parquet is not None:
        Path(str(base) + ".manifest.parquet").write_bytes(parquet)


def test_bad_manifests_are_named(written, tmp_path, monkeypatch):
    base = tmp_path / "d-000000"
    good = json.loads(Path(str(base) + ".manifest.json").read_text())
    rows = Path(str(base) + ".manifest.parquet").read_bytes()
    cases = [
        (b"{not json", "not a JSON manifest header"),
        (b"[" * 100_000 + b"]" * 100_000, "not a JSON manifest header"),
        ({**good, "manifest_version": "2.0.0"}, "upgrade atdata-lab"),
        ({**good, "num_samples": -1}, "num_samples"),
        ({**good, "created_at": "yesterday"}, "ISO date"),
        ({**good, "aggregates": {"n": {"type": "numeric", "min": "0"}}}, "valid numeric"),
        ({**good, "num_samples": 24}, "different writes"),
    ]
    for header, message in cases:
        _write_manifest(base, header)
        with pytest.raises(ManifestError, match=message):
            atdata.Dataset[LabeledSample](written.urls).query(where=F.n >= 0)
    _write_manifest(base, good, b"PAR1 not parquet")
    with pytest.raises(ManifestError, match="not a Parquet file"):
        atdata.Dataset[LabeledSample](written.urls).query(where=F.n >= 0)
    Path(str(base) + ".manifest.parquet").unlink()
    with pytest.raises(ManifestError, match="is missing"):
        atdata.Dataset[LabeledSample](written.urls).query(where=F.n >= 0)
    _write_manifest(base, good, rows)
    monkeypatch.setattr(sm, "HEADER_MAX", 100)
    with pytest.raises(ManifestError, match="more than the 100"):
        atdata.Dataset[LabeledSample](written.urls).query(where=F.n >= 0)
    monkeypatch.setattr(sm, "HEADER_MAX", 64 << 20)
    monkeypatch.setattr(sm, "ROWS_MAX", 100)
    with pytest.raises(ManifestError, match="decompressed"):
        atdata.Dataset[LabeledSample](written.urls).query(where=F.n >= 0)
    monkeypatch.setattr(sm, "ROWS_MAX", 4 << 30)
    d = atdata.Dataset[LabeledSample](written.urls)
    assert len(d.query(where=F.n >= 0)) == 100
    assert (
        pickle.loads(pickle.dumps(d)).query(where=F.n == 5)[0].key == "000005"
    )  # loaded manifests stay behind
    assert QueryExecutor([]).query(where=F.n > 0) == []
    with pytest.raises(InvalidArgumentError, match="missing must be"):
        load_manifests(written.urls, missing="sometimes")


def test_dictsample_datasets_get_manifests_from_their_values(tmp_path):
    rows = [atdata.DictSample(kind=["a", "b"][i % 2], v=float(i), arr=np.zeros(2)) for i in range(10)]
    ds = atdata.write_samples(rows, tmp_path / "dict.tar", manifest=True)
    assert list(json.loads((tmp_path / "dict.manifest.json").read_text())["aggregates"]) == ["kind", "v"]
    assert [s["v"] for s in ds.select(ds.query(where=F.kind == "b"))] == [1.0, 3.0, 5.0, 7.0, 9.0]


# ------------------------------------------------------------------------------------ S3


@pytest.mark.s3
def test_manifests_in_s3_are_published_queried_and_built(s3_server, s3_bucket, tmp_path, monkeypatch):
    from atdata_lab.stores.s3 import S3DataStore

    store = S3DataStore(
        s3_bucket,
        prefix="m/",
        endpoint_url=s3_server.endpoint_url,
        key=s3_server.key,
        secret=s3_server.secret,
    )
    index = atdata.Index(path=tmp_path / "i.db", data_store=store)
    index.write([sample_of(r) for r in ROWS], name="s3lab", maxcount=40, manifest=True, progress=False)
    listed = sorted(p.rsplit("/", 1)[-1] for p in store.fs.ls(f"{s3_bucket}/m/s3lab", refresh=True))
    assert listed == sorted(
        f"s3lab-{i:06d}{ext}" for i in range(3) for ext in (".tar", ".manifest.json", ".manifest.parquet")
    )
    ds = index.dataset("s3lab")
    ds._infos.clear()  # as a reader that knows only the URLs
    monkeypatch.setattr(dataset_mod, "scan_shard", lambda *a, **k: pytest.fail("a shard was scanned"))
    reads: list[int] = []
    real = dataset_mod.read_range

    def counting(url, offset, size, opts=None):
        reads.append(size)
        return real(url, offset, size, opts)

    monkeypatch.setattr(dataset_mod, "read_range", counting)
    hits = ds.query(where=(F.label == "cat") & (F.n < 60))
    want = [r["n"] for r in ROWS[:60] if r["label"] == "cat"]
    assert [s.n for s in ds.select(hits)] == want and len(reads) == len(want) and max(reads) < 1024
    # entries written without manifests get them later, in the store
    index.write([sample_of(r) for r in ROWS[:50]], name="later", maxcount=20, progress=False)
    assert index.build_manifests("later", progress=False)["skipped"] == []
    assert len(index.dataset("later").query(where=F.n >= 45)) == 5
    index.delete_entry("later", delete_data=True)
    assert not store.fs.exists(f"{s3_bucket}/m/later/later-000000.manifest.json")


def test_a_reused_identical_shard_keeps_the_manifest_published_with_it(tmp_path):
    from atdata_lab.manifest.builder import ManifestSidecars
    from atdata_lab.sample import codec_for
    from atdata_lab.shards import ShardSetWriter, encode_samples_into

    store = atdata.LocalDiskStore(tmp_path / "s")
    samples = [sample_of(r) for r in ROWS[:30]]

    def write(exists):
        w = ShardSetWriter(
            lambda i: store.shard_url("same", i),
            store.open_sink,
            maxcount=20,
            sidecars=ManifestSidecars(LabeledSample, samples[0]),
            exists=exists,
        )
        encode_samples_into(w, samples, codec_for(LabeledSample))
        w.finish()
        w.commit()
        return w

    assert len(write(store.exists).created) == 2
    first = (tmp_path / "s" / "same" / "same-000000.manifest.json").read_bytes()
    again = write(store.exists)  # same shard bytes; the new headers differ (created_at): the old ones stay
    assert (
        again.created == [] and (tmp_path / "s" / "same" / "same-000000.manifest.json").read_bytes() == first
    )
    with pytest.raises(FileExistsError, match="never replaces"):
        write(None)  # not knowing whether the shard is there: nothing is replaced, the write stops


def test_writing_the_same_data_again_with_manifests_adds_them(tmp_path):
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "store"))
    samples = [sample_of(r) for r in ROWS[:40]]
    e1 = index.write(samples, name="twice", maxcount=25, progress=False)
    with pytest.raises(ManifestNotFoundError):
        index.dataset("twice").query(where=F.n > 0)
    e2 = index.write(samples, name="twice", maxcount=25, progress=False, manifest=True)
    assert e2.cid == e1.cid and len(index.dataset("twice").query(where=F.n > 0)) == 39
    dict_ds = atdata.Dataset(e1.data_urls)
    assert dict_ds.fields is F and len(dict_ds.query(where=dict_ds.fields.label == "dog")) > 0


def test_manifests_built_for_shards_atdata_wrote(tmp_path):
    """The fixtures were written by the real atdata 0.7 (PAX headers before every member, uuid keys)."""
    from tests.support.fixtures import fixture_path

    @atdata.packable
    class ExperimentSample:
        measurement: NDArray
        timestamp: float
        sensor_id: str

    urls = []
    for name in ("experiment-000000.tar", "experiment-000001.tar"):
        (tmp_path / name).write_bytes(fixture_path(name).read_bytes())
        urls.append(str(tmp_path / name))
    index = atdata.Index(path=tmp_path / "i.db", data_store=atdata.LocalDiskStore(tmp_path / "store"))
    index.insert_dataset(atdata.Dataset[ExperimentSample](urls), name="exp", progress=False)
    assert index.build_manifests("exp", progress=False)["built"] == urls
    every = list(atdata.Dataset[ExperimentSample](urls).ordered())
    ds = atdata.Dataset[ExperimentSample](urls)
    hits = ds.query(where=(F.sensor_id == "sensor_1") & (F.timestamp < 40))
    assert [s.timestamp for s in ds.select(hits)] == [
        s.timestamp for s in every if s.sensor_id == "sensor_1" and s.timestamp < 40
    ]
    assert hits[0].data_offset - hits[0].offset == 3 * 512  # PAX header, its data, then the ustar header
    assert np.array_equal(ds.get(hits[1]).measurement, every[5].measurement)


def test_unusual_columns_keep_their_values(tmp_path):
    import pandas as pd

    df = pd.DataFrame(
        {
            "__key__": ["a", "b", "c"],
            "__offset__": [0, 512, 1024],
            "__size__": [1, 2, 3],
            "mixed": [1, "x", None],
            "maps": [{"k": [1, 2]}, None, {}],
            "huge": [2**70, 1, None],
            "raw": [b"\x00\x01", b"", None],
            "arrays": [np.arange(2), None, np.zeros(0)],
        }
    )
    m = ShardManifest("odd", "Odd", "1.0.0", 3, 100, datetime.now(UTC), {}, df)
    jp, pp = ManifestWriter(tmp_path / "odd").write(m)
    back = ShardManifest.from_files(jp, pp).samples
    assert back["mixed"].tolist() == [1, "x", None]
    assert back["maps"].tolist() == [{"k": [1, 2]}, None, {}]
    assert back["huge"].tolist()[:2] == [float(2**70), 1.0] and math.isnan(back["huge"].tolist()[2])
    assert back["raw"].tolist() == [b"\x00\x01", b"", None]
    assert back["arrays"].tolist() == [[0, 1], None, []]
