"""atdata 0.7's Index surface beyond the conformance suite: the default index, name aliases,
labels, lenses stored in the index, repositories."""

from __future__ import annotations

import pytest

import atdata_lab as atdata
from tests.conformance.index_suite import experiment


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
