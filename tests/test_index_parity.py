"""atdata 0.7's Index surface beyond the conformance suite: the default index, name aliases,
labels, lenses stored in the index, repositories."""

from __future__ import annotations

import warnings

import pytest

import atdata_lab as atdata
from atdata_lab.errors import AtdataLabWarning
from atdata_lab.lens import lens
from tests.conformance.index_suite import ExperimentSample, experiment


@atdata.packable
class _Other:
    text: str


@pytest.fixture
def index(tmp_path):
    return atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))


def test_default_index_is_set_got_and_used_by_load_dataset(index):
    index.write(experiment(40), name="training-v1", progress=False)
    atdata.set_default_index(index)
    assert atdata.get_default_index() is index
    ds = atdata.load_dataset("@local/training-v1", split="train")
    batch = next(iter(ds.ordered(batch_size=32)))
    assert batch.measurement.shape == (32, 64)


def test_default_index_opens_one_index_under_atdata_home(atdata_home):
    first = atdata.get_default_index()
    assert first is atdata.get_default_index()
    assert first.provider.path == atdata_home / "index.db"
    atdata.set_default_index(None)
    assert atdata.get_default_index() is not first


def test_set_default_index_rejects_other_objects():
    with pytest.raises(TypeError, match="needs an atdata_lab.Index"):
        atdata.set_default_index("~/.atdata/index.db")  # type: ignore[arg-type]
    with pytest.raises(atdata.AtdataLabError):
        atdata.set_default_index(42)  # type: ignore[arg-type]


def test_atdata_stores_names_match_atdata():
    import atdata_lab.stores as stores

    # atdata 0.7.0b1: atdata.stores exports exactly these public names
    public = {"LocalDiskStore", "S3DataStore"}
    assert public <= set(stores.__all__)
    for name in public:
        assert getattr(stores, name) is getattr(atdata, name)


def test_atdata_names_for_entries_and_schemas(index):
    e = index.write(experiment(10), name="a", progress=False)
    assert [x.name for x in index.list_datasets()] == ["a"]
    assert index.list_datasets(repo="local") == index.datasets == index.all_entries == index.entries
    ref = e.schema_ref
    assert [r["$ref"] for r in index.schemas] == [ref]
    assert index.get_schema_record(ref) == index.get_schema(ref)
    t = index.load_schema(ref)
    assert index.types.ExperimentSample is t
    assert index.decode_schema_as(ref, t).__name__ == "ExperimentSample"
    with pytest.raises(ValueError, match="no repository named"):
        index.list_datasets(repo="lab")


def test_add_entry_indexes_in_place(index):
    e = index.write(experiment(10), name="a", progress=False)
    ds = atdata.Dataset[ExperimentSample](e.data_urls)
    b = index.add_entry(ds, name="b", metadata={"k": 1})
    assert b.cid == e.cid and b.data_urls == e.data_urls and b.metadata == {"k": 1}
    assert index.add_entry(ds, name="b", schema_ref=e.schema_ref).name == "b"
    with pytest.raises(atdata.SchemaNotFoundError):
        index.add_entry(ds, name="c", schema_ref="atdata://local/schema/Other@1.0.0")
    other = index.publish_schema(_Other)
    with pytest.raises(ValueError, match="leave schema_ref out"):
        index.add_entry(ds, name="c", schema_ref=other)
    assert [x.name for x in index.list_datasets()].count("c") == 0  # refused before indexing


def test_labels_point_names_and_versions_at_entries(index):
    a = index.write(experiment(10), name="a", progress=False)
    b = index.write(experiment(10, seed=1), name="b", progress=False)
    index.label("mnist", a.cid, version="1.0.0")
    index.label("mnist", b.cid, version="2.0.0", description="cleaned")
    assert index.get_label("mnist", version="1.0.0").name == "a"
    assert index.get_label("mnist").name == "b"  # the newest
    assert sorted(index.list_labels()) == sorted([("mnist", a.cid, "1.0.0"), ("mnist", b.cid, "2.0.0")])
    assert index.labels == index.list_labels()
    index.label("mnist", a.cid, version="2.0.0")  # moves the label
    assert index.get_label("mnist", version="2.0.0").name == "a"
    with pytest.raises(KeyError, match="no label 'nope'"):
        index.get_label("nope")
    with pytest.raises(KeyError):
        index.label("x", "bafyreinotthere")
    index.delete_entry("a")
    index.delete_entry("b")
    with pytest.raises(KeyError, match="label it again"):
        index.get_label("mnist", version="1.0.0")


@atdata.packable
class Gray:
    sensor_id: str
    mean: float


@lens
def to_gray(s: ExperimentSample) -> Gray:
    return Gray(sensor_id=s.sensor_id, mean=float(s.measurement.mean()))


@to_gray.putter
def to_gray_put(v: Gray, s: ExperimentSample) -> ExperimentSample:
    return ExperimentSample(measurement=s.measurement, timestamp=s.timestamp, sensor_id=v.sensor_id)


def test_lenses_are_stored_by_import_path_and_load_back(index):
    ref = index.store_lens(to_gray, name="gray", description="mean of a row")
    assert ref == "atdata://local/lens/gray@1.0.0"
    assert index.store_lens(to_gray, name="gray") == "atdata://local/lens/gray@1.0.1"
    rec = index.get_lens(ref)
    assert rec["getter"] == f"{__name__}:to_gray" and rec["putter"] == f"{__name__}:to_gray_put"
    assert (rec["source_schema"], rec["view_schema"]) == ("ExperimentSample", "Gray")
    assert index.get_lens("gray")["version"] == "1.0.1"
    assert [r["version"] for r in index.find_lenses("ExperimentSample", "Gray")] == ["1.0.1", "1.0.0"]
    assert index.find_lenses("Gray") == [] and index.lenses == index.list_lenses()
    loaded = index.load_lens(ref)
    s = experiment(1)[0]
    assert loaded(s).mean == pytest.approx(float(s.measurement.mean()))
    assert loaded.put(Gray(sensor_id="x", mean=0.0), s).sensor_id == "x"
    with pytest.raises(KeyError, match="no lens"):
        index.get_lens("atdata://local/lens/gray@9.0.0")


def test_lenses_without_an_import_path_are_refused(index):
    def inner(s: ExperimentSample) -> Gray:
        return Gray(sensor_id=s.sensor_id, mean=0.0)

    with pytest.raises(ValueError, match="define it with def at module level"):
        index.store_lens(lens(inner), name="inner")
    with pytest.raises(TypeError):
        index.store_lens(inner, name="inner")  # type: ignore[arg-type]


def test_named_repositories_are_listed_and_hold_their_labels(index, tmp_path):
    lab = atdata.create_repository(
        "sqlite", path=tmp_path / "lab.db", data_store=atdata.LocalDiskStore(tmp_path / "lab")
    )
    assert isinstance(lab, atdata.Repository)
    idx = atdata.Index(index.provider, data_store=index.data_store, repos={"lab": lab})
    assert set(idx.repos) == {"local", "lab"} and idx.repos["lab"] is lab
    mine = idx.write(experiment(5), name="mine", progress=False)
    theirs = atdata.Index(lab.provider, data_store=lab.data_store).write(
        experiment(5, seed=2), name="theirs", progress=False
    )
    assert sorted(e.name for e in idx.list_datasets()) == ["mine", "theirs"]
    assert [e.name for e in idx.list_datasets(repo="lab")] == ["theirs"]
    assert [e.name for e in idx.datasets] == [e.name for e in idx.list_datasets()]
    idx.label("lab/mnist", theirs.cid, version="1.0.0")
    idx.label("mnist", mine.cid)
    assert idx.get_label("lab/mnist").name == "theirs" and idx.get_label("mnist").name == "mine"
    assert sorted(idx.list_labels()) == sorted(
        [("mnist", mine.cid, None), ("lab/mnist", theirs.cid, "1.0.0")]
    )
    assert idx.list_labels(repo="lab") == [("lab/mnist", theirs.cid, "1.0.0")]
    with pytest.raises(ValueError, match="names other than 'local'"):
        atdata.Index(index.provider, repos={"local": lab})


def test_create_repository_providers(tmp_path):
    repo = atdata.create_repository(path=tmp_path / "r.db")
    assert repo.provider.path == tmp_path / "r.db" and repo.data_store is None
    with pytest.raises(ValueError, match="needs a DSN.*dsn='postgresql://"):
        atdata.create_repository("postgres")  # the real provider: tests/test_index_postgres.py
    with pytest.raises(ValueError, match="unknown index provider 'mongo'"):
        atdata.create_repository("mongo")
    with pytest.raises(ValueError, match="unknown options"):
        atdata.create_repository("sqlite", path=tmp_path / "x.db", pool_size=3)
    with pytest.raises(ValueError, match="needs an IndexProvider"):
        atdata.Repository("sqlite")  # type: ignore[arg-type]


def test_write_samples_to_another_data_store(index, tmp_path):
    other = atdata.LocalDiskStore(tmp_path / "elsewhere")
    e = index.write_samples(experiment(10), name="there", data_store=other, progress=False)
    assert all(u.startswith(str(tmp_path / "elsewhere")) for u in e.data_urls)
    assert len(index.dataset(e)) == 10


def test_write_samples_under_a_taken_name_keeps_both(index, tmp_path):
    # atdata's local-workflow tutorial writes "training-v1" to disk, then again to S3: atdata adds a
    # second entry of that name; here the second is indexed as training-v1-v2, nothing replaced.
    first = index.write_samples(experiment(20), name="training-v1", maxcount=10, progress=False)
    other = atdata.LocalDiskStore(tmp_path / "team")
    with pytest.warns(AtdataLabWarning, match="indexed as 'training-v1-v2'"):
        second = index.write_samples(experiment(20), name="training-v1", data_store=other, progress=False)
    assert second.name == "training-v1-v2" and second.cid != first.cid
    assert index.get_entry_by_name("training-v1") == first and len(index.dataset(first)) == 20
    assert all(u.startswith(str(tmp_path / "team")) for u in second.data_urls)
    # re-running either cell finds its entry again (same content: no third entry, no warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            index.write_samples(experiment(20), name="training-v1", data_store=other, progress=False)
            == second
        )
        assert index.write_samples(experiment(20), name="training-v1", maxcount=10, progress=False) == first
    third = index.write_samples(experiment(5), name="training-v1", progress=False, overwrite=True)
    assert index.get_entry_by_name("training-v1") == third  # overwrite=True replaces, as in write
    assert {e.name for e in index.list_entries()} == {"training-v1", "training-v1-v2"}
    with pytest.raises(atdata.EntryConflictError, match="overwrite=True"):
        index.write(experiment(7), name="training-v1", progress=False)  # write itself never renames


def test_get_dataset_finds_local_names_too(index, tmp_path):
    e = index.write(experiment(5), name="local-one", progress=False)
    assert index.get_dataset("local-one").cid == e.cid
    assert index.get_dataset("@local/local-one").cid == e.cid
    lab = atdata.create_repository("sqlite", path=tmp_path / "lab.db")
    idx = atdata.Index(index.provider, data_store=index.data_store, repos={"lab": lab})
    atdata.Index(lab.provider, data_store=index.data_store).write(
        experiment(5, seed=3), name="x", progress=False
    )
    assert idx.get_dataset("lab/x").name == "x"
    with pytest.raises(atdata.EntryNotFoundError):
        index.get_dataset("nope")


def test_get_schema_type_registers_only_when_asked(index):
    e = index.write(experiment(3), name="a", progress=False)
    t = index.get_schema_type(e.schema_ref, register=False)
    assert t.__name__ == "ExperimentSample" and not hasattr(index.types, "ExperimentSample")
    assert index.get_schema_type(e.schema_ref) is not None and hasattr(index.types, "ExperimentSample")


def test_write_with_a_schema_ref_uses_it_only_when_the_data_fits(index):
    ref = index.publish_schema(ExperimentSample, version="3.0.0")
    e = index.write(experiment(5), name="fits", schema_ref=ref, progress=False)
    assert e.schema_ref == ref
    other = index.publish_schema(_Other)
    before = sorted(p.name for p in index.data_store.root.rglob("*.tar"))
    with pytest.raises(ValueError, match="does not fit schema_ref"):
        index.write(experiment(5, seed=1), name="misfit", schema_ref=other, progress=False)
    assert sorted(p.name for p in index.data_store.root.rglob("*.tar")) == before  # nothing kept
    with pytest.raises(atdata.EntryNotFoundError):
        index.get_entry_by_name("misfit")
    with pytest.raises(atdata.SchemaNotFoundError):
        index.write(experiment(5, seed=1), name="misfit", schema_ref="Nope@1.0.0", progress=False)


def test_insert_dataset_into_another_data_store_copies_there(index, tmp_path):
    e = index.write(experiment(10), name="src", maxcount=4, progress=False)
    ds = atdata.Dataset[ExperimentSample](e.data_urls)
    other = atdata.LocalDiskStore(tmp_path / "other")
    copied = index.insert_dataset(
        ds, name="copied", data_store=other, schema_ref=e.schema_ref, progress=False
    )
    assert all(u.startswith(str(tmp_path / "other")) for u in copied.data_urls)
    assert copied.shard_checksums == e.shard_checksums and len(index.dataset(copied)) == 10
