"""The fast paths of manifests give exactly what the plain paths give.

* Statistics of a whole column (``update``) equal ``add`` on each value in turn, errors included.
* The manifests the shard writer makes (field values kept as the samples are written, columns and
  statistics made once the shard is complete, the Arrow table made without pandas) equal, file for
  file, the manifests made sample by sample through a DataFrame (``manifest_of_shard``).
* A predicate evaluated once over the joined rows of many shards returns what evaluating it shard
  by shard returns (and what a brute-force filter says), errors included; a dataset keeps its
  executor, so a second query reads no manifest again.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import atdata_lab as atdata
from atdata_lab.errors import InvalidArgumentError
from atdata_lab.manifest import F, QueryExecutor, SampleLocation, create_aggregate
from atdata_lab.manifest import query as query_mod
from atdata_lab.manifest import shard_manifest as sm
from atdata_lab.manifest.aggregates import BadValue
from atdata_lab.manifest.build import manifest_of_shard
from atdata_lab.manifest.builder import ManifestSidecars
from atdata_lab.shards import ShardSetWriter
from atdata_lab.stores.local import FileSink
from tests.support.manifest_queries import QUERIES, brute_force, to_where

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("pandas")


def same(a, b) -> bool:
    """Equal, with NaN equal to NaN and 0.0 told from -0.0 (nested in dicts)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ------------------------------------------------------------------------------------ statistics

NUMBERS = (
    st.none()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, 0, True, False])
)
ANY_VALUE = (
    NUMBERS
    | st.text(max_size=3)
    | st.lists(st.integers(0, 3), max_size=2)
    | st.sampled_from([np.float32(1.5), np.int64(2), np.str_("a"), 1.0, 1, "1", "x"])
)


def one_by_one(kind: str, values: list):
    agg = create_aggregate(kind)
    for i, v in enumerate(values):
        if v is not None:
            try:
                agg.add(v)
            except InvalidArgumentError as e:
                return agg, (i, str(e))
    return agg, None


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["categorical", "numeric", "set"]),
    values=st.lists(NUMBERS, max_size=30) | st.lists(ANY_VALUE, max_size=30),
    before=st.lists(NUMBERS, max_size=3),
)
def test_update_is_add_on_each_value(kind, values, before):
    if kind == "set":  # a set field's values are lists
        values = [v if v is None or isinstance(v, list) else [v] for v in values]
        before = [[v] for v in before if v is not None]
    want, want_err = one_by_one(kind, before + values)
    got, _ = one_by_one(kind, before)
    try:
        got.update(values)
        err = None
    except BadValue as e:
        err = (e.position + len(before), str(e))
    assert err == want_err
    if err is None:
        assert same(got.to_dict(), want.to_dict())


@given(values=st.lists(st.floats(allow_nan=True) | st.integers(-(2**62), 2**62), min_size=1, max_size=30))
def test_numeric_update_takes_a_numpy_column(values):
    floats = [float(v) for v in values]
    a, b = create_aggregate("numeric"), create_aggregate("numeric")
    a.update(np.array(floats))
    for v in floats:
        b.add(v)
    assert same(a.to_dict(), b.to_dict())


# ------------------------------------------------------------------------------------ writing


@atdata.packable
class Mixed:
    s: str
    i: int
    f: float
    b: bool
    tags: list[str]
    nums: list[int]
    oi: Optional[int] = None
    of: Optional[float] = None
    os: Optional[str] = None


ROW = st.fixed_dictionaries(
    {
        "s": st.text(max_size=6),
        "i": st.integers(-(2**63), 2**64 - 1),
        "f": st.floats(allow_nan=True, allow_infinity=True),
        "b": st.booleans(),
        "tags": st.lists(st.sampled_from(["x", "y", "é", ""]), max_size=3),
        "nums": st.lists(st.integers(-5, 5), max_size=3),
        "oi": st.none() | st.integers(-100, 100),
        "of": st.none() | st.floats(allow_nan=True),
        "os": st.none() | st.sampled_from(["p", "q"]),
    }
)


def parquet_of(url: str):
    return pq.read_table(url[: -len(".tar")] + sm.PARQUET_SUFFIX)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=25), per=st.integers(1, 10))
def test_written_manifests_equal_the_ones_made_sample_by_sample(rows, per):
    with tempfile.TemporaryDirectory() as tmp:
        ds = atdata.write_samples([Mixed(**r) for r in rows], Path(tmp) / "m", maxcount=per, manifest=True)
        for url in ds.urls:
            written = sm.ShardManifest.from_files(url[:-4] + sm.JSON_SUFFIX, url[:-4] + sm.PARQUET_SUFFIX)
            plain = manifest_of_shard(url, Mixed)
            assert same(written.aggregates, plain.aggregates)
            assert written.num_samples == plain.num_samples and written.size_bytes == plain.size_bytes
            again = Path(tmp) / "again"
            again.mkdir(exist_ok=True)
            jp, pp = atdata.manifest.ManifestWriter(again / Path(url).name).write(plain)
            theirs = pq.read_table(pp)
            ours = parquet_of(url)
            assert ours.schema == theirs.schema
            assert ours.equals(theirs), (ours.to_pylist(), theirs.to_pylist())


def test_numpy_values_are_kept_as_python_values(tmp_path):
    @atdata.packable
    class Num:
        f: float
        i: int

    samples = [Num(f=np.float32(0.5), i=np.int64(3)), Num(f=np.float64(-1.25), i=np.int64(-7))]
    ds = atdata.write_samples(samples, tmp_path / "n", manifest=True)
    m = QueryExecutor.from_directory(tmp_path).manifests[0]
    assert m.samples["f"].tolist() == [0.5, -1.25] and m.samples["i"].tolist() == [3, -7]
    assert m.aggregates["f"] == {"type": "numeric", "min": -1.25, "max": 0.5, "mean": -0.375, "count": 2}
    assert same(m.aggregates, manifest_of_shard(ds.urls[0], Num).aggregates)


def test_a_bad_value_names_its_sample_and_nothing_is_published(tmp_path):
    @atdata.packable
    class Loose:
        x: float

    samples = [Loose(x=float(i)) for i in range(30)]
    samples[17].x = "many"
    sidecars = ManifestSidecars(Loose, samples[0])
    out = tmp_path / "out"
    writer = ShardSetWriter(lambda i: str(out / f"l-{i:06d}.tar"), FileSink, maxcount=10, sidecars=sidecars)
    with pytest.raises(InvalidArgumentError, match=r"sample '000017', field 'x': .*not a number"):
        for n, s in enumerate(samples):
            writer.add("%06d" % n, b"\x80", sample=s)
        writer.finish()
    writer.abort()
    assert [p.name for p in out.iterdir()] == []


def test_the_schema_version_known_at_commit_is_recorded(tmp_path):
    @atdata.packable
    class V:
        x: int

    sidecars = ManifestSidecars(V, V(x=0))
    writer = ShardSetWriter(
        lambda i: str(tmp_path / "v" / f"v-{i:06d}.tar"), FileSink, maxcount=2, sidecars=sidecars
    )
    for n in range(3):
        writer.add("%06d" % n, b"\x80", sample=V(x=n))
    writer.finish()
    sidecars.schema_version = "2.1.0"  # what index.write learns once every shard is written
    writer.commit()
    assert {m.schema_version for m in QueryExecutor.from_directory(tmp_path / "v").manifests} == {"2.1.0"}


# ------------------------------------------------------------------------------------ queries


@atdata.packable
class Row:
    label: str
    conf: float
    n: int
    flag: bool
    tags: list[str]
    opt: Optional[float] = None


def rows_for(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    labels = ["cat", "dog", "bird", "fish", "horse"]
    return [
        {
            "label": labels[int(rng.integers(0, 5))],
            "conf": round(float(rng.uniform(0, 1)), 3),
            "n": i,
            "flag": bool(rng.integers(0, 2)),
            "tags": ["outdoor"] if rng.integers(0, 2) else [],
            # whole shards without a value: their column is of another dtype (another group)
            "opt": None if (i // 10) % 3 == 1 or i % 4 == 0 else round(float(rng.uniform(0, 1)), 2),
        }
        for i in range(n)
    ]


@pytest.fixture
def mixed(tmp_path):
    rows = rows_for(120, 7)
    ds = atdata.write_samples([Row(**r) for r in rows], tmp_path / "q", maxcount=10, manifest=True)
    shards = [
        (f"q-{k:06d}", [f"{j:06d}" for j in range(k * 10, k * 10 + 10)], rows[k * 10 : k * 10 + 10])
        for k in range(12)
    ]
    return ds, shards


@pytest.mark.parametrize("spec", QUERIES[:18], ids=[str(q) for q in QUERIES[:18]])
def test_joined_evaluation_equals_shard_by_shard(mixed, spec, monkeypatch):
    ds, shards = mixed
    ex = QueryExecutor.from_shards(ds.urls)
    where = to_where(spec, F)
    joined = []
    real = query_mod._Joined.locations

    def counting(self, hits, manifests):
        joined.append(len(manifests))
        return real(self, hits, manifests)

    monkeypatch.setattr(query_mod._Joined, "locations", counting)
    got = ex.query(where)
    each = ex._query_each(where, list(range(len(ex.manifests))))
    assert got == each
    assert [(h.url, h.data_offset, h.size) for h in got] == [(h.url, h.data_offset, h.size) for h in each]
    assert [(h.shard, h.key) for h in got] == brute_force(spec, shards)
    kept = [i for i, m in enumerate(ex.manifests) if where.may_match(m.aggregates)]
    if max(Counter(ex._kind_of(i)[1] for i in kept).values(), default=0) > 1:
        assert joined, "shards whose columns agree are joined"
    assert [s.n for s in ds.select(got)] == [int(h.key) for h in got]


def test_groups_of_shards_keep_file_order(mixed):
    ds, shards = mixed
    ex = QueryExecutor.from_shards(ds.urls)
    kinds = {ex._kind_of(i)[1] for i in range(len(ds.urls))}
    assert len(kinds) == 2  # shards 1, 4, 7, 10 have no "opt" value at all
    hits = ex.query(F.n >= 0)
    assert [h.key for h in hits] == [f"{i:06d}" for i in range(120)]
    hits = ex.query(F.opt >= 0)
    assert [(h.shard, h.key) for h in hits] == brute_force(["ge", "opt", 0], shards)


def test_errors_are_the_ones_shard_by_shard_evaluation_raises(mixed):
    ds, _ = mixed
    ex = QueryExecutor.from_shards(ds.urls)
    with pytest.raises(InvalidArgumentError, match="no manifest field 'conff'"):
        ex.query(F.conff > 1)
    with pytest.raises(TypeError) as joined_err:
        ex.query(F.label < 3)
    with pytest.raises(TypeError) as each_err:
        ex._query_each(F.label < 3, list(range(len(ds.urls))))
    assert str(joined_err.value) == str(each_err.value)


def test_new_rows_of_a_manifest_are_seen(mixed):
    ds, _ = mixed
    ex = QueryExecutor.from_shards(ds.urls)
    assert len(ex.query(F.n < 5)) == 5
    m = ex.manifests[0]
    df = m.samples.copy()
    df["n"] = df["n"] + 1000
    m.samples = df
    assert [h.key for h in ex.query(F.n < 5)] == []
    assert [h.key for h in ex.query(F.n > 5) if h.shard == "q-000000"] == [f"{i:06d}" for i in range(10)]


def test_locations_are_sample_locations(mixed):
    ds, _ = mixed
    hit = ds.query(F.n == 3)[0]
    plain = SampleLocation(
        hit.shard, hit.key, hit.offset, url=hit.url, data_offset=hit.data_offset, size=hit.size
    )
    assert (
        type(hit) is SampleLocation and hit == plain and hash(hit) == hash(plain) and repr(hit) == repr(plain)
    )
    assert (hit.url, hit.data_offset, hit.size) == (plain.url, plain.data_offset, plain.size)
    with pytest.raises(AttributeError):
        hit.key = "x"


def test_a_dataset_keeps_its_executor(mixed, monkeypatch):
    ds, _ = mixed
    fresh = atdata.Dataset[Row](ds.urls)
    assert len(fresh.query(F.n >= 0)) == 120  # every shard's rows are read once
    reads = []
    real = sm.rows_from_parquet
    monkeypatch.setattr(sm, "rows_from_parquet", lambda *a: reads.append(a[1]) or real(*a))
    assert len(fresh.query(F.label == "dog")) > 0 and reads == []


def test_a_shard_and_its_manifest_are_durable_before_any_is_published(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_sync, real_commit = FileSink.sync, FileSink.commit
    monkeypatch.setattr(
        FileSink, "sync", lambda self: events.append(("sync", self.path.name)) or real_sync(self)
    )
    monkeypatch.setattr(
        FileSink, "commit", lambda self: events.append(("publish", self.path.name)) or real_commit(self)
    )
    rows = [Row(**r) for r in rows_for(30, 1)]
    atdata.write_samples(rows, tmp_path / "d", maxcount=20, manifest=True)
    for i in range(2):
        names = [f"d-{i:06d}{ext}" for ext in (".tar", ".manifest.parquet", ".manifest.json")]
        mine = [e for e in events if e[1] in names]
        assert sorted(mine[:3]) == sorted(("sync", n) for n in names)  # all three durable first,
        assert mine[3:] == [("publish", names[1]), ("publish", names[2]), ("publish", names[0])]  # rows first
