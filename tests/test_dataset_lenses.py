"""Lenses in datasets: ``as_type(View)`` applies a registered lens in every way of reading."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata


@atdata.packable
class Rich:
    image: NDArray
    caption: str
    label: str


@atdata.packable
class Pixels:
    image: NDArray
    label: str


@atdata.packable
class Shout:
    loud: str


@atdata.packable
class Subset:
    label: str


@atdata.packable
class Elsewhere:
    other: int


@atdata.lens
def to_pixels(src: Rich) -> Pixels:
    return Pixels(image=src.image * 2, label=src.label.upper())


@atdata.lens
def to_shout(src: Pixels) -> Shout:
    return Shout(loud=src.label + "!")


def rich(i: int) -> Rich:
    return Rich(image=np.full((2, 3), i, dtype=np.int32), caption=f"c{i}", label=f"l{i}")


@pytest.fixture
def ds(tmp_path):
    return atdata.write_samples([rich(i) for i in range(10)], tmp_path / "d", maxcount=4)


def test_lens_is_applied_per_sample_batched_shuffled_and_randomly(ds):
    view = ds.as_type(Pixels)
    assert view.sample_type is Pixels
    it = list(view)
    assert [s.label for s in it] == [f"L{i}" for i in range(10)]
    assert all(type(s) is Pixels for s in it)
    batches = list(view.ordered(batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches[0].sample_type is Pixels
    assert batches[0].image.shape == (4, 2, 3)
    assert batches[0].image[3, 0, 0] == 6  # the getter doubled it
    assert batches[0].label == ["L0", "L1", "L2", "L3"]
    assert sorted(s.label for s in view.shuffled(buffer=3, seed=1)) == sorted(f"L{i}" for i in range(10))
    shuffled_batches = list(view.shuffled(buffer=3, seed=1, batch_size=5))
    assert all(b.sample_type is Pixels for b in shuffled_batches)
    assert sorted(int(x) for b in shuffled_batches for x in b.image[:, 0, 0]) == [2 * i for i in range(10)]
    assert view[7].label == "L7" and view[7].image[0, 0] == 14
    assert view[-1].label == "L9"


def test_lens_paths_and_chained_as_type(ds):
    assert [s.loud for s in ds.as_type(Shout).head(2)] == ["L0!", "L1!"]
    assert ds.as_type(Pixels).as_type(Shout)[3].loud == "L3!"
    assert [b.loud for b in ds.as_type(Shout).ordered(batch_size=3)][0] == ["L0!", "L1!", "L2!"]


def test_without_a_lens_fields_by_name_or_a_clear_error(ds):
    assert [s.label for s in ds.as_type(Subset).head(2)] == ["l0", "l1"]
    with pytest.raises(atdata.LensNotFoundError, match="Elsewhere") as e:
        ds.as_type(Elsewhere)
    assert isinstance(e.value, ValueError)
    with pytest.raises(atdata.LensNotFoundError):
        ds.as_type(Pixels).as_type(Subset)  # no lens from Pixels to Subset, and Pixels is decoded via a lens
    assert ds.as_type(Rich).sample_type is Rich


def test_lens_follows_map_and_filter(ds):
    view = ds.filter(lambda s: s.caption != "c0").as_type(Pixels)
    assert [s.label for s in view.head(2)] == ["L1", "L2"]


def test_top_level_names():
    assert atdata.LensNetwork() is atdata.LensNetwork()
    assert isinstance(to_pixels, atdata.Lens)
    assert atdata.LensNetwork()._registry[(Rich, Pixels)] is to_pixels


def test_a_lensed_dataset_pickles_for_loader_workers(ds):
    import pickle

    view = pickle.loads(pickle.dumps(ds.as_type(Pixels)))
    assert view.sample_type is Pixels and view[2].label == "L2"
    path = pickle.loads(pickle.dumps(ds.as_type(Shout)))  # a path of two lenses, found again on load
    assert path[1].loud == "L1!"


def test_a_dataset_read_through_an_index_finds_the_lenses_of_the_class_that_wrote_it(tmp_path):
    """index.dataset() decodes with a type generated from the stored schema; the lens registered
    for the user's own class (same name and fields) still applies, in every way of reading."""
    index = atdata.Index(path=tmp_path / "index.db", data_store=atdata.LocalDiskStore(tmp_path / "data"))
    entry = index.write([rich(i) for i in range(10)], name="rich", maxcount=4, progress=False)
    stored = index.dataset(entry)
    assert stored.sample_type is not Rich and stored.sample_type.__name__ == "Rich"
    view = stored.as_type(Pixels)
    assert view[7].label == "L7" and view[7].image[0, 0] == 14
    assert next(view.ordered(batch_size=4)).label == ["L0", "L1", "L2", "L3"]
    assert sorted(s.label for s in view.shuffled(seed=3)) == sorted(f"L{i}" for i in range(10))
    assert stored.as_type(Shout)[3].loud == "L3!"  # a path of two lenses
