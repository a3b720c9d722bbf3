"""Lenses: getters, putters, the laws (as hypothesis properties), and path finding in the network."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata_lab as atdata
from atdata_lab.lens import Lens, LensNetwork, LensNotFoundError, lens, lens_law_violations


@atdata.packable
class Full:
    image: NDArray
    label: str
    confidence: float


@atdata.packable
class Simple:
    label: str
    confidence: float


@atdata.packable
class LabelOnly:
    label: str


@atdata.packable
class Upper:
    label: str


@atdata.packable
class Length:
    n: int


@atdata.packable
class Island:
    x: int


@lens
def simplify(src: Full) -> Simple:
    return Simple(label=src.label, confidence=src.confidence)


@simplify.putter
def simplify_put(view: Simple, source: Full) -> Full:
    return Full(image=source.image, label=view.label, confidence=view.confidence)


@lens
def label_only(src: Simple) -> LabelOnly:
    return LabelOnly(label=src.label)


@label_only.putter
def label_only_put(view: LabelOnly, source: Simple) -> Simple:
    return Simple(label=view.label, confidence=source.confidence)


@lens
def upper(src: LabelOnly) -> Upper:
    return Upper(label=src.label.upper())


@lens
def length(src: Upper) -> Length:
    return Length(n=len(src.label))


full_samples = st.builds(
    Full,
    image=st.integers(0, 4).map(lambda n: np.arange(n * 3, dtype=np.uint8).reshape(n, 3)),
    label=st.text(max_size=12),
    confidence=st.floats(allow_nan=True, allow_infinity=True),
)
simple_views = st.builds(Simple, label=st.text(max_size=12), confidence=st.floats(allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(full_samples, simple_views)
def test_simplify_obeys_the_lens_laws(source, view):
    assert lens_law_violations(simplify, source, view) == []


@settings(max_examples=200, deadline=None)
@given(full_samples, st.builds(LabelOnly, label=st.text(max_size=12)))
def test_a_composed_lens_obeys_the_laws_too(source, view):
    composed = LensNetwork().transform(Full, LabelOnly)
    assert composed.get(source) == LabelOnly(label=source.label)
    assert lens_law_violations(composed, source, view) == []


def test_the_law_checker_catches_a_broken_putter():
    @lens
    def lossy(src: Island) -> Length:
        return Length(n=src.x)

    @lossy.putter
    def lossy_put(view: Length, source: Island) -> Island:
        return Island(x=0)  # forgets the view: PutGet fails, and so does GetPut for x != 0

    assert lens_law_violations(lossy, Island(x=3), Length(n=5)) == ["GetPut", "PutGet"]
    LensNetwork()._registry.pop((Island, Length))


def test_get_put_call_and_the_trivial_putter():
    src = Full(image=np.zeros((2, 2), np.uint8), label="cat", confidence=0.5)
    assert simplify(src) == simplify.get(src) == Simple(label="cat", confidence=0.5)
    updated = simplify.put(Simple(label="dog", confidence=0.9), src)
    assert (updated.label, updated.confidence) == ("dog", 0.9) and updated.image is src.image
    assert upper.put(Upper(label="X"), LabelOnly(label="x")) == LabelOnly(label="x")  # no putter: unchanged
    assert (simplify.source_type, simplify.view_type) == (Full, Simple) and simplify.__name__ == "simplify"


def test_the_network_is_one_registry_and_finds_the_shortest_path_over_five_types():
    net = LensNetwork()
    assert net is LensNetwork() and net._registry[(Full, Simple)] is simplify
    path = net.transform(Full, Length)  # Full -> Simple -> LabelOnly -> Upper -> Length
    src = Full(image=np.zeros(1, np.uint8), label="abc", confidence=1.0)
    assert path.get(src) == Length(n=3) and path.__name__ == "simplify+label_only+upper+length"
    assert net.transform(Simple, Simple).get(Simple(label="a", confidence=1.0)) == Simple(
        label="a", confidence=1.0
    )
    # a shortcut registered later is preferred
    shortcut = Lens(lambda s: Length(n=0), source=Full, view=Length)
    net.register(shortcut)
    try:
        assert net.transform(Full, Length) is shortcut
    finally:
        net._registry.pop((Full, Length))


def test_a_missing_lens_names_the_missing_hop():
    with pytest.raises(LensNotFoundError) as err:
        LensNetwork().transform(Full, Island)
    msg = str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, atdata.AtdataLabError)
    assert "Full leads to LabelOnly, Length, Simple, Upper" in msg and "Island is reached from nothing" in msg
    assert "def f(src:" in msg and "-> Island" in msg


def test_a_lens_must_say_its_types():
    with pytest.raises(ValueError, match="annotate the getter"):
        LensNetwork().register(Lens(lambda s: s))
    with pytest.raises(ValueError, match="getter function"):
        Lens(42)
