"""Sample types: every field kind, inheritance, DictSample, schemas and their content identity."""

from __future__ import annotations

import pickle
from typing import Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.errors import SampleDecodeError
from atdata_lab.schema import Schema


@atdata.packable
class Base:
    """A base sample."""

    image: NDArray[np.uint8]
    label: str


@atdata.packable
class Rich(Base):
    score: float
    count: int
    flag: bool
    raw: bytes
    tags: list[str]
    extra: dict[str, int]
    mask: Optional[NDArray] = None
    note: str | None = None


def make_rich(i=0):
    return Rich(
        image=np.full((4, 5, 3), i, np.uint8),
        label=f"l{i}",
        score=i / 3,
        count=i,
        flag=i % 2 == 0,
        raw=bytes([i]),
        tags=["a", "b"][: i % 3],
        extra={"k": i},
        mask=None if i % 2 else np.ones(3, bool),
    )


def test_inherited_fields_come_first_and_round_trip():
    names = [f.name for f in Rich.schema().fields]
    assert names[:2] == ["image", "label"]
    s = make_rich(2)
    back = Rich.from_bytes(s.packed)
    assert back.label == "l2" and back.extra == {"k": 2} and back.mask.dtype == bool
    np.testing.assert_array_equal(back.image, s.image)
    assert back.as_wds == {"msgpack": s.packed}


def test_dtype_annotation_is_recorded_and_plain_ndarray_is_not_guessed():
    schema = Rich.schema()
    assert schema.field("image").type.dtype == "|u1"
    assert schema.field("mask").type.dtype is None  # plain NDArray: dtype comes from the data written
    assert schema.field("mask").optional and schema.field("note").optional


def test_unsupported_annotation_is_named():
    with pytest.raises(TypeError, match=r"Bad\.x.*set"):

        @atdata.packable
        class Bad:
            x: set


def test_packable_types_pickle_for_multiprocess_loaders():
    s = make_rich(1)
    assert pickle.loads(pickle.dumps(s)).label == "l1"


def test_wrong_field_kind_names_the_field():
    import msgpack

    bad = msgpack.packb({"image": "not bytes", "label": "x"})
    with pytest.raises(SampleDecodeError, match="'image'"):
        Base.from_bytes(bad)
    with pytest.raises(SampleDecodeError, match="'label'.*missing"):
        from atdata_lab.ndarray_codec import encode_ndarray

        Base.from_bytes(msgpack.packb({"image": encode_ndarray(np.zeros(1, np.uint8))}))


def test_dictsample_access_both_ways():
    d = atdata.DictSample.from_bytes(make_rich(0).packed)
    assert d["label"] == d.label == "l0"
    assert isinstance(d.image, np.ndarray) and d.raw == b"\x00"
    with pytest.raises(AttributeError, match="no field"):
        d.nope


def test_content_cid_ignores_description_and_time_and_matches_across_notebooks():
    def define():
        @atdata.packable
        class Sample:
            """Docs vary."""

            x: NDArray
            y: int

        return Sample

    a, b = define(), define()
    sa = Schema.from_type(a)
    sb = Schema.from_type(b, description="another description")
    assert sa.content_cid() == sb.content_cid()
    assert sa.content_cid().startswith("bafyrei")
    assert sa.with_hints({"x": "<f4"}, {}).content_cid() != sa.content_cid()


def test_schema_record_round_trip_and_generated_type():
    rec = Rich.schema().to_record()
    assert rec["fields"][0]["fieldType"] == {"$type": "local#ndarray", "dtype": "|u1"}
    T = Schema.from_record(rec).to_type()
    s = make_rich(3)
    t = T.from_bytes(s.packed)
    assert t.label == "l3" and t.tags == ["a", "b"][:0]
    assert Schema.from_type(T).content_cid() == Rich.schema().content_cid()


field_values = st.fixed_dictionaries(
    {
        "arr": hnp.arrays(
            dtype=st.sampled_from([np.dtype(d) for d in ("<f4", ">f8", "|u1", "<i2", ">c8", "|b1", "<f2")]),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
        ),
        "s": st.text(max_size=20),
        "i": st.integers(-(2**63), 2**63 - 1),
        "f": st.floats(allow_nan=False),
        "b": st.booleans(),
        "by": st.binary(max_size=20),
        "ls": st.lists(st.text(max_size=5), max_size=4),
        "opt": st.none() | st.text(max_size=5),
    }
)


@atdata.packable
class Prop:
    arr: NDArray
    s: str
    i: int
    f: float
    b: bool
    by: bytes
    ls: list[str]
    opt: Optional[str] = None


@settings(max_examples=150, deadline=None)
@given(field_values)
def test_property_round_trip_over_kinds_and_dtypes(values):
    s = Prop(**values)
    back = Prop.from_bytes(s.packed)
    assert back.arr.dtype.str == s.arr.dtype.str and back.arr.shape == s.arr.shape
    assert np.array_equal(back.arr, s.arr, equal_nan=s.arr.dtype.kind in "fc")
    for k in ("s", "i", "f", "b", "by", "ls", "opt"):
        assert getattr(back, k) == getattr(s, k)
    d = atdata.DictSample.from_bytes(s.packed)
    assert list(d.keys()) == ["arr", "s", "i", "f", "b", "by", "ls", "opt"]
