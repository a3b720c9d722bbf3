"""atdata's module-level names: schema_to_type, generate_cid/verify_cid, verify_checksums, Packable,
and its error names as aliases in our one hierarchy."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.entry import IndexEntry


@atdata.packable
class Row:
    name: str
    v: NDArray


def test_error_aliases_are_one_hierarchy():
    assert atdata.AtdataError is atdata.AtdataLabError
    for err in (
        atdata.SchemaError,
        atdata.SampleKeyError,
        atdata.PartialFailureError,
        atdata.LensNotFoundError,
    ):
        assert issubclass(err, atdata.AtdataError)
    assert issubclass(atdata.SampleKeyError, KeyError)
    for name in (
        "AtdataError",
        "SampleKeyError",
        "PartialFailureError",
        "Packable",
        "schema_to_type",
        "generate_cid",
        "verify_cid",
        "verify_checksums",
        "lens",
        "LensNetwork",
    ):
        assert name in atdata.__all__ and hasattr(atdata, name)


def test_generate_and_verify_cid():
    cid = atdata.generate_cid({"name": "test", "value": 42})
    assert cid == "bafyreidnzhwcbncg3avwjjao5o6wx4zhnksmxhdo6w5iaqupexnmzdlb54"  # atdata 0.7 gives the same
    assert atdata.verify_cid(cid, {"name": "test", "value": 42})
    assert not atdata.verify_cid(cid, {"name": "other", "value": 42})
    with pytest.raises(ValueError):
        atdata.generate_cid({"x": object()})
    assert not atdata.verify_cid(cid, {"x": object()})


def test_schema_to_type_round_trips_a_record():
    rec = Row.schema().to_record()
    T = atdata.schema_to_type(rec)
    assert T is atdata.schema_to_type(rec) and T is not atdata.schema_to_type(rec, use_cache=False)
    s = T(name="a", v=np.arange(3))
    assert T.from_bytes(s.packed).name == "a"
    with pytest.raises(ValueError):
        atdata.schema_to_type({"name": "x"})


def test_packable_protocol():
    assert isinstance(Row(name="a", v=np.zeros(1)), atdata.Packable)
    assert not isinstance(object(), atdata.Packable)


def test_verify_checksums(tmp_path):
    ds = atdata.write_samples([Row(name=str(i), v=np.zeros(2)) for i in range(4)], tmp_path / "d", maxcount=2)
    sums = [hashlib.sha256(open(u, "rb").read()).hexdigest() for u in ds.urls]
    entry = IndexEntry(
        name="d",
        cid="c",
        data_urls=[*ds.urls, str(tmp_path / "gone.tar")],
        schema_ref="x",
        shard_checksums=[sums[0], "0" * 64, "1" * 64],
    )
    got = atdata.verify_checksums(entry)
    assert got[ds.urls[0]] == "ok" and got[ds.urls[1]] == "mismatch"
    assert got[str(tmp_path / "gone.tar")].startswith("error:")
    entry.shard_checksums = [sums[0]]
    assert atdata.verify_checksums(entry)[ds.urls[1]] == "skipped"


class ListLogger:
    """A logger of your own (anything with debug/info/warning/error), as structlog's."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _add(self, level: str, msg: str, *args, **kwargs) -> None:
        self.lines.append((level, msg % args if args else msg))

    def debug(self, msg, *args, **kwargs):
        self._add("debug", msg, *args)

    def info(self, msg, *args, **kwargs):
        self._add("info", msg, *args)

    def warning(self, msg, *args, **kwargs):
        self._add("warning", msg, *args)

    def error(self, msg, *args, **kwargs):
        self._add("error", msg, *args)


def test_configure_logging_routes_the_librarys_messages():
    from atdata_lab.atmosphere import _http  # a module that logs through the library's logger

    mine = ListLogger()
    atdata.configure_logging(mine)
    try:
        assert atdata.get_logger() is mine
        _http.log.debug("hello %s", "there")
        with atdata.log_operation("copy", shards=3):
            pass
        with pytest.raises(RuntimeError), atdata.log_operation("fail"):
            raise RuntimeError("boom")
        with pytest.raises(TypeError, match="debug/info/warning/error"):
            atdata.configure_logging(object())  # type: ignore[arg-type]
    finally:
        atdata.configure_logging(None)
    levels = [lvl for lvl, _ in mine.lines]
    texts = [t for _, t in mine.lines]
    assert texts[0] == "hello there" and texts[1] == "copy: started (shards=3)"
    assert texts[2].startswith("copy: completed in ") and texts[2].endswith("(shards=3)")
    assert levels[-1] == "error" and texts[-1].startswith("fail: failed after ")
    assert atdata.get_logger().name == "atdata_lab"  # back to the standard library's


def test_every_store_is_an_atdata_data_store(tmp_path):
    store = atdata.LocalDiskStore(tmp_path / "s")
    assert isinstance(store, atdata.AbstractDataStore) and store.supports_streaming()
    ds = atdata.write_samples([Row(name=str(i), v=np.zeros(2)) for i in range(5)], tmp_path / "d")
    urls = store.write_shards(ds, prefix="datasets/rows/v1", maxcount=2)
    assert isinstance(urls, atdata.ShardWriteResult) and len(urls) == 3
    assert all("datasets-rows-v1" in u for u in urls) and store.read_url(urls[0]) == urls[0]
    assert urls.checksums[urls[0]] == hashlib.sha256(open(urls[0], "rb").read()).hexdigest()
    assert [s.name for s in atdata.Dataset[Row](list(urls))] == [str(i) for i in range(5)]
    again = store.write_shards(ds, prefix="datasets/rows/v1")  # never over the first shards
    assert set(again).isdisjoint(urls) and len(again) == 1
    with pytest.raises(ValueError, match="invalid"):
        store.write_shards(ds, prefix="../escape!")


def test_load_dataset_data_files_and_streaming(tmp_path):
    for split, n in (("a", 3), ("b", 2)):
        atdata.write_samples(
            [Row(name=f"{split}{i}", v=np.zeros(1)) for i in range(n)], tmp_path / f"{split}.tar"
        )
    dd = atdata.load_dataset(
        str(tmp_path), Row, data_files={"train": "a.tar", "test": ["b.tar"]}, streaming=True
    )
    assert set(dd) == {"train", "test"} and dd.streaming and dd.sample_type is Row
    assert [s.name for s in dd["test"]] == ["b0", "b1"]
    one = atdata.load_dataset(str(tmp_path), Row, data_files="*.tar", split="train")
    assert len(one) == 5
    listed = atdata.load_dataset(str(tmp_path), data_files=[str(tmp_path / "b.tar")])
    assert list(listed) == ["train"] and len(listed["train"]) == 2
    with pytest.raises(FileNotFoundError):
        atdata.load_dataset(str(tmp_path), data_files={"train": "missing-*.tar"})


def test_errors_take_atdatas_constructors_and_keep_their_fields(tmp_path):
    import pickle

    e = atdata.SampleKeyError(key="k1")
    assert e.key == "k1" and "k1" in str(e) and isinstance(e, KeyError)
    s = atdata.ShardError(shard_id="data-000.tar", reason="truncated")
    assert (s.shard_id, s.reason) == ("data-000.tar", "truncated") and "truncated" in str(s)
    plain = atdata.ShardError("shard x.tar is not a tar file")
    assert plain.shard_id is None and str(plain) == "shard x.tar is not a tar file"
    m = atdata.SchemaError("Img", expected_fields=["a", "b"], actual_fields=["b", "c"])
    assert str(m) == "schema mismatch for Img; missing fields: a; unexpected fields: c"
    assert str(atdata.SchemaError("plain message")) == "plain message"
    ln = atdata.LensNotFoundError(source_type=Row, view_type=int, available_targets=[(str, "to_text")])
    assert ln.source_type is Row and "Row" in str(ln) and "str (via to_text)" in str(ln)
    for err in (e, s, plain, m, ln):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and vars(back) == vars(err)
    ds = atdata.write_samples([Row(name="a", v=np.zeros(1))], tmp_path / "one.tar")
    with pytest.raises(atdata.SampleKeyError) as got:
        ds.get("nope")
    assert got.value.key == "nope"
    with pytest.raises(atdata.LensNotFoundError) as lost:
        atdata.LensNetwork().transform(Row, atdata.DictSample)
    assert lost.value.source_type is Row and lost.value.view_type is atdata.DictSample
