"""The index conformance suite, written once. A backend opts in by subclassing
:class:`IndexSuite` and providing an ``index`` fixture that returns a fresh, empty
:class:`atdata_lab.Index` on that backend."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata


@atdata.packable
class ExperimentSample:
    """A sample from a scientific experiment."""

    measurement: NDArray
    timestamp: float
    sensor_id: str


def experiment(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return [
        ExperimentSample(
            measurement=rng.standard_normal(64).astype(np.float32),
            timestamp=float(i),
            sensor_id=f"sensor_{i % 4}",
        )
        for i in range(n)
    ]


class IndexSuite:
    """Behaviour every index provider must have."""

    @pytest.fixture
    def index(self):  # pragma: no cover - each backend overrides
        raise NotImplementedError

    def test_tutorial_local_workflow(self, index):
        local_entry = index.write(experiment(), name="experiment-2024-001", maxcount=500, progress=False)
        assert local_entry.name == "experiment-2024-001"
        assert local_entry.cid.startswith("bafyrei")
        assert len(local_entry.data_urls) == 2 and local_entry.num_samples == 1000
        entry = index.get_entry_by_name("experiment-2024-001")
        assert entry == local_entry
        ds = atdata.Dataset[ExperimentSample](entry.data_urls[0])
        shapes = [b.measurement.shape for b in ds.ordered(batch_size=32)]
        assert shapes[0] == (32, 64) and len(shapes) == 16
        assert len(entry.shard_checksums) == 2 and all(len(c) == 64 for c in entry.shard_checksums)
        assert entry.schema_ref == "atdata://local/schema/ExperimentSample@1.0.0"

    def test_entry_identity_rewrite_and_overwrite(self, index):
        a = index.write(experiment(100), name="e", progress=False)
        again = index.write(experiment(100), name="e", progress=False)  # re-running a cell is safe
        assert again.cid == a.cid and again.created_at == a.created_at
        with pytest.raises(atdata.EntryConflictError, match="overwrite=True") as err:
            index.write(experiment(50, seed=1), name="e", progress=False)
        assert isinstance(err.value, ValueError)
        assert index.get_entry_by_name("e").num_samples == 100  # nothing already stored is lost
        assert len(atdata.Dataset[ExperimentSample](a.data_urls)) == 100
        b = index.write(experiment(50, seed=1), name="e", overwrite=True, progress=False)
        assert b.cid != a.cid and index.get_entry_by_name("e").num_samples == 50
        # same content under another name: two entries, same CID (never collapsed)
        c = index.write(experiment(50, seed=1), name="e-copy", progress=False)
        assert c.cid == b.cid and {x.name for x in index.list_entries()} == {"e", "e-copy"}
        assert index.get_entry(b.cid).name in {"e", "e-copy"}

    def test_cid_is_content_derived_not_url_derived(self, index, tmp_path):
        a = index.write(experiment(30), name="a", progress=False)
        other = atdata.Index(
            path=tmp_path / "other.db", data_store=atdata.LocalDiskStore(tmp_path / "elsewhere")
        )
        b = other.write(experiment(30), name="a", progress=False)
        assert a.data_urls != b.data_urls and a.cid == b.cid

    def test_missing_entries_raise_key_error(self, index):
        with pytest.raises(KeyError, match="nope"):
            index.get_entry_by_name("nope")
        with pytest.raises(atdata.EntryNotFoundError):
            index.get_entry("bafyreinothere")
        with pytest.raises(KeyError):
            index.delete_entry("nope")

    def test_bad_names_and_empty_input(self, index):
        with pytest.raises(ValueError, match="invalid"):
            index.write(experiment(2), name="../escape", progress=False)
        with pytest.raises(ValueError, match="empty"):
            index.write([], name="empty", progress=False)
        with pytest.raises(ValueError, match="tags"):
            index.write(experiment(2), name="t", tags="notalist", progress=False)
        assert len(index) == 0

    def test_search_filters_sorts_and_pages(self, index):
        for i in range(30):
            index.write(
                experiment(i + 1),
                name=f"run-{i:02d}",
                tags=["even" if i % 2 == 0 else "odd", "all"],
                description="calibration" if i < 5 else "measurement",
                progress=False,
            )
        page = index.search(limit=10, sort="name", descending=False)
        assert page.total == 30 and [e.name for e in page][:2] == ["run-00", "run-01"]
        page3 = index.search(limit=10, offset=20, sort="name", descending=False)
        assert [e.name for e in page3][0] == "run-20" and len(page3) == 10
        assert index.search("calib").total == 5
        assert index.search("RUN-1").total == 10
        assert index.search(tags=["even"]).total == 15
        assert (
            index.search(tags=["even", "all"]).total == 15 and index.search(tags=["even", "odd"]).total == 0
        )
        assert index.search(schema="ExperimentSample").total == 30
        assert index.search(schema="Other").total == 0
        by_tag = index.search(sort="tags", descending=False, limit=30)
        assert [e.tags[0] for e in by_tag] == sorted(e.tags[0] for e in by_tag)
        biggest = index.search(sort="num_samples", limit=1)[0]
        assert biggest.name == "run-29"
        assert index.search("100%_").total == 0  # LIKE wildcards are literal
        with pytest.raises(ValueError, match="sort"):
            index.search(sort="drop table")

    def test_delete_entry_keeps_or_removes_data(self, index):
        e = index.write(experiment(10), name="gone", progress=False)
        index.delete_entry("gone")
        assert all(os.path.exists(u) for u in e.data_urls)
        e2 = index.write(experiment(10), name="gone2", progress=False)
        index.delete_entry("gone2", delete_data=True)
        assert not any(os.path.exists(u) for u in e2.data_urls)
        assert len(index) == 0

    def test_schemas_publish_version_and_conflict(self, index):
        ref = index.publish_schema(ExperimentSample, version="1.0.0")
        assert ref == "atdata://local/schema/ExperimentSample@1.0.0"
        assert index.publish_schema(ExperimentSample, version="1.0.0") == ref  # idempotent
        rec = index.get_schema(ref)
        assert [f["name"] for f in rec["fields"]] == ["measurement", "timestamp", "sensor_id"]
        assert rec["description"] == "A sample from a scientific experiment."

        @atdata.packable
        class ExperimentSample2:
            measurement: NDArray
            timestamp: float
            sensor_id: str
            note: Optional[str] = None

        ExperimentSample2.__name__ = "ExperimentSample"
        with pytest.raises(atdata.SchemaConflictError, match="note.*1.1.0") as err:
            index.publish_schema(ExperimentSample2, version="1.0.0")
        assert err.value.suggested_version == "1.1.0" and isinstance(err.value, ValueError)
        assert index.publish_schema(ExperimentSample2) == "atdata://local/schema/ExperimentSample@1.1.0"
        assert {s["version"] for s in index.list_schemas()} == {"1.0.0", "1.1.0"}
        T = index.get_schema_type(ref)
        assert [f.name for f in atdata.Schema.from_type(T).fields] == [
            "measurement",
            "timestamp",
            "sensor_id",
        ]
        assert index.decode_schema(ref) is T
        with pytest.raises(KeyError):
            index.get_schema("atdata://local/schema/Nope@1.0.0")

    def test_write_reuses_schema_and_generated_type_reads(self, index):
        a = index.write(experiment(5), name="a", progress=False)
        b = index.write(experiment(5, seed=3), name="b", progress=False)
        assert a.schema_ref == b.schema_ref and len(index.list_schemas()) == 1
        rec = index.get_schema(a.schema_ref)
        assert rec["fields"][0]["fieldType"]["dtype"] == "<f4"  # the dtype actually written
        ds = index.dataset("a")
        assert ds[4].sensor_id == "sensor_0" and ds[4].measurement.dtype == np.float32

    def test_insert_existing_shards_in_place_and_copied(self, index, tmp_path):
        src = atdata.write_samples(experiment(60), tmp_path / "ext" / "x", maxcount=25)
        ds = atdata.Dataset[ExperimentSample](src.urls)
        e = index.insert_dataset(ds, name="in-place", progress=False)
        assert e.data_urls == src.urls and e.num_samples == 60
        c = index.insert_dataset(ds, name="copied", copy=True, progress=False)
        assert c.cid == e.cid and all(index.data_store.owns(u) for u in c.data_urls)
        assert index.dataset("copied")[59].timestamp == 59.0
        assert open(c.data_urls[1], "rb").read() == open(src.urls[1], "rb").read()

    def test_to_pandas_and_generation(self, index):
        g0 = index.generation()
        index.write(experiment(3), name="p", progress=False)
        assert index.generation() > g0
        df = index.to_pandas()
        assert list(df["name"]) == ["p"] and df["num_samples"][0] == 3

    def test_deleting_data_keeps_shards_other_entries_use(self, index):
        a = index.write(experiment(10), name="a", progress=False)
        index.insert_dataset(index.dataset("a"), name="b", progress=False)  # same shard files
        index.delete_entry("b", delete_data=True)
        assert all(os.path.exists(u) for u in a.data_urls)
        assert len(index.dataset("a")) == 10 and index.dataset("a")[9].timestamp == 9.0
        index.delete_entry("a", delete_data=True)
        assert not any(os.path.exists(u) for u in a.data_urls)

    def test_overwrite_never_writes_over_files_in_use(self, index):
        old = index.write(experiment(10), name="ow", progress=False)
        old_bytes = [open(u, "rb").read() for u in old.data_urls]
        reader = index.dataset("ow")  # a reader opened before the overwrite
        new = index.write(experiment(4, seed=9), name="ow", overwrite=True, progress=False)
        assert set(new.data_urls).isdisjoint(old.data_urls)
        assert index.get_entry_by_name("ow").data_urls == new.data_urls and len(index.dataset("ow")) == 4
        assert not any(os.path.exists(u) for u in old.data_urls)  # unused old files are removed...
        index.write(experiment(10), name="keep", progress=False)
        index.insert_dataset(index.dataset("keep"), name="keep-twin", progress=False)
        twin_urls = index.get_entry_by_name("keep-twin").data_urls
        index.write(experiment(3, seed=2), name="keep", overwrite=True, progress=False)
        assert all(os.path.exists(u) for u in twin_urls)  # ...but files another entry uses stay
        assert len(index.dataset("keep-twin")) == 10
        del reader, old_bytes

    def test_a_failed_write_stores_no_schema(self, index):
        index.write(experiment(5), name="taken", progress=False)

        @atdata.packable
        class Other:
            y: int

        with pytest.raises(atdata.EntryConflictError):
            index.write([Other(y=1)], name="taken", progress=False)
        assert {s["name"] for s in index.list_schemas()} == {"ExperimentSample"}

    def test_filtered_datasets_write_but_do_not_insert(self, index):
        src = index.write(experiment(20), name="src", progress=False)
        evens = atdata.Dataset[ExperimentSample](src.data_urls).filter(lambda s: int(s.timestamp) % 2 == 0)
        assert index.write(evens, name="evens", progress=False).num_samples == 10
        with pytest.raises(ValueError, match="filter"):
            index.insert_dataset(evens, name="nope", progress=False)

    def test_sorting_and_filters_are_exact(self, index):
        """Every provider orders by the full value (bytes, then name) and matches schema names exactly."""
        rows = [
            ("a-none", [], None),
            ("b-zeta", ["zeta"], "Zlib"),
            ("c-ab", ["alphabet-one"], "CC-BY-4.0"),
            ("d-ab", ["alphabet-two"], "CC-BY-SA-4.0"),
            ("e-eacute", ["é"], "MIT"),
            ("f-f", ["f"], "Apache-2.0"),
        ]
        for i, (name, tags, lic) in enumerate(rows):
            index.write(experiment(i + 1), name=name, tags=tags, license=lic, progress=False)
        by_tag = [e.name for e in index.search(sort="tags", descending=False, limit=None)]
        assert by_tag == ["a-none", "c-ab", "d-ab", "f-f", "b-zeta", "e-eacute"]
        assert [e.name for e in index.search(sort="tags", limit=None)] == list(reversed(by_tag))
        by_license = [e.name for e in index.search(sort="license", descending=False, limit=None)]
        assert by_license == ["a-none", "f-f", "c-ab", "d-ab", "e-eacute", "b-zeta"]
        page = index.search(sort="license", descending=False, offset=2, limit=2, tags=None)
        assert [e.name for e in page] == ["c-ab", "d-ab"] and page.total == 6
        narrowed = index.search(sort="license", descending=True, schema="ExperimentSample", limit=3)
        assert [e.name for e in narrowed] == ["b-zeta", "e-eacute", "d-ab"]
        assert index.search(schema="experimentsample").total == 0  # schema names match exactly

    def test_labels_are_stored_in_the_provider(self, index):
        a = index.write(experiment(5), name="a", progress=False)
        b = index.write(experiment(5, seed=1), name="b", progress=False)
        index.label("mnist", a.cid, version="1.0.0")
        index.label("mnist", b.cid, version="2.0.0")
        assert index.get_label("mnist", version="1.0.0").name == "a"
        assert index.get_label("mnist").name == "b"
        assert sorted(index.list_labels()) == sorted([("mnist", a.cid, "1.0.0"), ("mnist", b.cid, "2.0.0")])

    def test_lenses_are_stored_in_the_provider(self, index):
        from atdata_lab.lens import Lens

        def head(s: ExperimentSample) -> ExperimentSample:
            return s

        head.__qualname__ = "experiment"  # any module-level name imports; the stored path is what counts
        ref = index.store_lens(Lens(head), name="head", version="2.0.0", source_schema="A", view_schema="B")
        assert index.get_lens(ref)["getter"] == f"{__name__}:experiment"
        assert (
            [r["$ref"] for r in index.find_lenses("A", "B")]
            == [ref]
            == [r["$ref"] for r in index.list_lenses()]
        )

    def test_shard_counts_come_without_offsets_and_a_dataset_loads_each_shards_offsets_on_first_use(
        self, index, monkeypatch
    ):
        from atdata_lab.shards import ShardInfo

        entry = index.write(experiment(200), name="many", maxcount=10, progress=False)  # 20 shards
        urls = entry.data_urls
        counts, full = index.provider.get_shard_counts(urls), index.provider.get_shards(urls)
        assert list(counts) == list(urls) or set(counts) == set(urls)
        for u in urls:
            assert counts[u] == {
                "url": u,
                "checksum": full[u]["checksum"],
                "size": full[u]["size"],
                "num_samples": 10,
                "has_offsets": True,
            }
        assert index.provider.get_shard_counts([]) == {}
        assert index.provider.get_shard_counts(["file:///nowhere.tar"]) == {}

        decoded: list[int] = []
        real = ShardInfo.offsets_from_blob
        monkeypatch.setattr(
            ShardInfo, "offsets_from_blob", staticmethod(lambda b: decoded.append(1) or real(b))
        )
        ds = index.dataset(entry)
        assert len(ds) == 200 and decoded == []  # counts only: no shard's offsets decoded
        want = experiment(200)
        for k in (57, -1, 55, 199):
            got = ds[k]
            assert got.timestamp == want[k].timestamp
            assert np.array_equal(got.measurement, want[k].measurement)
        assert len(decoded) == 2  # shards 5 and 19, each decoded once
        assert ds.locate(3) == (urls[0], 3, ds.shard_info(urls[0]).keys[3]) and len(decoded) == 3
        order = [s.timestamp for s in ds.shuffled(seed=1, epoch=0)]
        assert sorted(order) == [float(i) for i in range(200)] and len(decoded) == 20
