"""schema_diff: per-field changes named precisely, a verdict, and the version to use next."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.schema import Schema


def schema(**fields):
    """A Schema from name=annotation keyword arguments (in order)."""
    cls = type("S", (), {"__annotations__": fields})
    return Schema.from_type(atdata.packable(cls), version="1.2.3")


def test_identical():
    d = atdata.schema_diff(schema(x=NDArray[np.float32], y=int), schema(x=NDArray[np.float32], y=int))
    assert d.verdict == "identical" and d.next_version == "1.2.3" and d.identical
    assert [f.status for f in d.fields] == ["unchanged", "unchanged"]


def test_only_optional_fields_added_is_compatible():
    d = atdata.schema_diff(schema(x=int), schema(x=int, note=Optional[str]))
    assert d.verdict == "compatible" and d.next_version == "1.3.0"
    assert [(f.name, f.status) for f in d.changed()] == [("note", "added")]


@pytest.mark.parametrize(
    "before, after, change",
    [
        ({"x": NDArray[np.float32]}, {"x": NDArray[np.float64]}, "dtype <f4 -> <f8"),
        ({"x": Optional[int]}, {"x": int}, "optional -> required"),
        ({"x": list[str]}, {"x": list[int]}, "list item type str -> int"),
        ({"x": int}, {"x": str}, "kind int -> str"),
    ],
)
def test_changes_are_named_precisely_and_breaking(before, after, change):
    d = atdata.schema_diff(schema(**before), schema(**after))
    assert d.verdict == "breaking" and d.next_version == "2.0.0"
    assert d.fields[0].status == "changed" and change in d.fields[0].changes


def test_removed_and_required_added_are_breaking():
    d = atdata.schema_diff(schema(x=int, y=str), schema(x=int, z=float))
    assert {(f.name, f.status) for f in d.changed()} == {("y", "removed"), ("z", "added")}
    assert d.verdict == "breaking"
    assert "- y: str" in d.summary() and "+ z: float" in d.summary()


def test_reordering_is_noted_and_breaking():
    d = atdata.schema_diff(schema(x=int, y=int), schema(y=int, x=int))
    assert d.verdict == "breaking" and "reordered" in " ".join(d.notes)


def test_accepts_types_records_and_refs_through_an_index():
    index = atdata.Index()

    @atdata.packable
    class Thing:
        a: int

    ref = index.publish_schema(Thing)
    rec = index.get_schema(ref)
    assert atdata.schema_diff(Thing, rec).identical
    assert atdata.schema_diff(ref, Thing, index=index).identical
    assert atdata.schema_diff(rec, schema(a=int, b=Optional[str])).verdict == "compatible"
    assert atdata.schema_diff(Thing, Thing).to_dict()["verdict"] == "identical"
    with pytest.raises(TypeError, match="index"):
        atdata.schema_diff(ref, Thing)
