"""Manifests interoperate with the real atdata 0.7 both ways.

atdata's ``write_samples(..., manifest=True)`` output answers our queries exactly as atdata's own
``QueryExecutor`` answers them, and our manifests answer atdata's ``QueryExecutor`` exactly as
ours do (and as a brute-force filter over the samples says), with the same file names, header
keys, statistics and Parquet column types. atdata runs in its own Python 3.12 venv
(tests/support/atdata_reference.py); the queries are the same JSON for both sides
(tests/support/manifest_queries.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import atdata_lab as atdata
from atdata_lab.manifest import F, QueryExecutor
from tests.support import atdata_reference as ref
from tests.support.manifest_queries import QUERIES, brute_force, make_rows, to_where

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from tests.test_manifest import LabeledSample, sample_of  # noqa: E402 - after the importorskips

SCRIPT = Path(__file__).resolve().parent / "support" / "atdata_manifests.py"


def as_tuples(hits) -> list[tuple]:
    return [(h.shard, h.key, h.offset) for h in hits]


@pytest.fixture(scope="module")
def atdata_python():
    return ref.require_atdata_venv()


def run(doc: dict) -> dict:
    return ref.run_atdata_json(SCRIPT, stdin=json.dumps(doc))


def test_our_manifests_answer_atdatas_query_executor_identically(atdata_python, tmp_path):
    rows = make_rows(120)
    ds = atdata.write_samples([sample_of(r) for r in rows], tmp_path / "ours", maxcount=40, manifest=True)
    assert sorted(p.name for p in tmp_path.glob("ours-000000.manifest.*")) == [
        "ours-000000.manifest.json",
        "ours-000000.manifest.parquet",
    ]
    theirs = run({"cmd": "query", "dir": str(tmp_path), "queries": QUERIES})
    by_shard = run({"cmd": "query", "shards": ds.list_shards(), "queries": QUERIES})
    ex = QueryExecutor.from_directory(tmp_path)
    shards = [
        (f"ours-{i:06d}", [f"{j:06d}" for j in range(i * 40, i * 40 + 40)], rows[i * 40 : i * 40 + 40])
        for i in range(3)
    ]
    for spec, got, got2 in zip(QUERIES, theirs["results"], by_shard["results"]):
        ours = as_tuples(ex.query(where=to_where(spec, F)))
        assert [tuple(t) for t in got] == ours == [tuple(t) for t in got2], spec
        assert as_tuples(ds.query(where=to_where(spec, F))) == ours, spec
        assert [(s, k) for s, k, _ in ours] == brute_force(spec, shards), spec
    assert sum(len(r) for r in theirs["results"]) > 200  # the queries do select samples
    # atdata reads the statistics we wrote as we do, and our extra columns do not disturb it
    assert [m["aggregates"] for m in theirs["manifests"]] == [m.aggregates for m in ex._manifests]
    columns = [
        "__key__",
        "__offset__",
        "__size__",
        "label",
        "conf",
        "n",
        "flag",
        "tags",
        "opt",
        "__data_offset__",
        "__sha256__",
    ]
    assert all(m["columns"] == columns for m in theirs["manifests"])
    # and our offsets are real: each sample's tar member starts there
    hit = ex.query(where=F.n == 77)[0]
    raw = Path(ds.urls[1]).read_bytes()
    assert raw[hit.offset : hit.offset + 10] == b"000077.msg"


@pytest.mark.parametrize("maxcount", [None, 40])
def test_atdatas_manifests_answer_our_queries_identically(atdata_python, tmp_path, maxcount):
    rows = make_rows(120, seed=5)
    written = run({"cmd": "write", "path": str(tmp_path / "theirs.tar"), "rows": rows, "maxcount": maxcount})
    urls = [s["url"] for s in written["shards"]]
    theirs = run({"cmd": "query", "dir": str(tmp_path), "queries": QUERIES})
    ex = QueryExecutor.from_directory(tmp_path)
    ds = atdata.Dataset[LabeledSample](urls)
    for spec, got in zip(QUERIES, theirs["results"]):
        ours = as_tuples(ex.query(where=to_where(spec, F)))
        assert ours == [tuple(t) for t in got], spec
        assert as_tuples(ds.query(where=to_where(spec, F))) == ours, spec
    if maxcount is None:
        # one shard: atdata's manifest describes it completely, so its answers are the true ones,
        # and the samples they name are read back (atdata's rows do not say where the bytes are:
        # the shard's offset index finds them)
        keys = written["shards"][0]["keys"]
        shards = [("theirs", keys, rows)]
        for spec in QUERIES:
            hits = ds.query(where=to_where(spec, F))
            assert [(h.shard, h.key) for h in hits] == brute_force(spec, shards), spec
        hits = ds.query(where=(F.label == "dog") & (F.conf > 0.5))
        want = [r for r in rows if r["label"] == "dog" and r["conf"] > 0.5]
        assert [s.n for s in ds.select(hits)] == [r["n"] for r in want] and want
        assert ds.get(hits[0]).n == want[0]["n"]


def test_same_samples_give_the_same_statistics_and_column_types(atdata_python, tmp_path):
    rows = make_rows(60, seed=9)
    run({"cmd": "write", "path": str(tmp_path / "a" / "s.tar"), "rows": rows, "maxcount": None})
    atdata.write_samples([sample_of(r) for r in rows], tmp_path / "b" / "s.tar", manifest=True)
    theirs = json.loads((tmp_path / "a" / "s.manifest.json").read_text())
    ours = json.loads((tmp_path / "b" / "s.manifest.json").read_text())
    assert set(ours) == set(theirs)
    for key in ("manifest_version", "shard_id", "schema_type", "schema_version", "num_samples", "aggregates"):
        assert ours[key] == theirs[key], key
    assert (
        ours["size_bytes"] == (tmp_path / "b" / "s.tar").stat().st_size
    )  # the real size (atdata: payload total)
    s_theirs = pq.read_schema(tmp_path / "a" / "s.manifest.parquet")
    s_ours = pq.read_schema(tmp_path / "b" / "s.manifest.parquet")
    assert s_ours.names == [*s_theirs.names, "__data_offset__", "__sha256__"]
    for name in s_theirs.names:
        assert s_ours.field(name).type == s_theirs.field(name).type, name
    assert s_ours.field("__data_offset__").type == pa.int64()
    assert s_ours.field("__sha256__").type == pa.binary()
    # each row's sha256 is that of the sample's msgpack bytes, where __data_offset__ and __size__ say
    rows = pq.read_table(tmp_path / "b" / "s.manifest.parquet").to_pylist()
    raw = (tmp_path / "b" / "s.tar").read_bytes()
    assert len(rows) == 60
    for r in rows:
        payload = raw[r["__data_offset__"] : r["__data_offset__"] + r["__size__"]]
        assert r["__sha256__"] == hashlib.sha256(payload).digest()


def test_every_manifest_name_of_atdata_is_ours(atdata_python):
    names = ref.run_atdata_json(
        "import json, atdata, atdata.manifest as m\n"
        "own = [n for n in dir(m) if not n.startswith('_') and getattr(getattr(m, n), '__module__', '').startswith('atdata.manifest')]\n"
        "top = [n for n in own if getattr(atdata, n, None) is getattr(m, n)]\n"
        "print(json.dumps({'manifest': own + ['F', 'MANIFEST_FORMAT_VERSION'], 'top': top}))"
    )
    assert {"ManifestField", "QueryExecutor", "SampleLocation", "Predicate", "FieldProxy"} <= set(
        names["manifest"]
    )
    for name in names["manifest"]:
        assert hasattr(atdata.manifest, name), name
    assert {"ManifestField", "QueryExecutor", "SampleLocation", "query_fields"} <= set(names["top"])
    for name in names["top"]:
        assert name in atdata.__all__ and getattr(atdata, name) is getattr(atdata.manifest, name), name
