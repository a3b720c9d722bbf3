"""Per-shard statistics of manifest fields, collected while samples are written.

Each collector's ``to_dict()`` is the entry of the manifest header's ``"aggregates"`` (atdata's
keys): categorical ``{"type", "cardinality", "value_counts"}``, numeric ``{"type", "min", "max",
"mean", "count"}``, set ``{"type", "all_values"}``. Values are counted by their ``str()``, as
atdata does, and ``None`` is not counted. ``add(value)`` takes one value; ``update(values)`` a whole
column at once (what the shard writer does when a shard is complete), with exactly the result of
``add`` on each value in turn. :func:`merge_aggregates` combines the headers of many shards into
one dataset-wide summary (``Dataset.describe()``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError

__all__ = [
    "BadValue",
    "CategoricalAggregate",
    "NumericAggregate",
    "SetAggregate",
    "create_aggregate",
    "merge_aggregates",
]


class BadValue(InvalidArgumentError):
    """``update()`` met a value its kind cannot take: ``position`` says which (the message is
    ``add()``'s)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def _add_each(agg: Any, values: Sequence[Any]) -> None:
    """``agg.add`` on each value that is not None, in order (a bad one raises :class:`BadValue`)."""
    for i, v in enumerate(values):
        if v is not None:
            try:
                agg.add(v)
            except InvalidArgumentError as e:
                raise BadValue(str(e), i) from None


_COUNTED_AS_IS: tuple[frozenset[type], ...] = (
    frozenset(),
    frozenset({str}),
    frozenset({int}),
    frozenset({bool}),
)


class CategoricalAggregate:
    """How often each distinct value occurs (counted by ``str(value)``, first seen first)."""

    kind = "categorical"

    def __init__(self, value_counts: dict[str, int] | None = None) -> None:
        self.value_counts: dict[str, int] = dict(value_counts or {})

    @property
    def cardinality(self) -> int:
        """How many distinct values were seen."""
        return len(self.value_counts)

    def add(self, value: Any) -> None:
        text = str(value)
        self.value_counts[text] = self.value_counts.get(text, 0) + 1

    def update(self, values: Sequence[Any], types: set[type] | None = None) -> None:
        """``add`` each value that is not None, counted in one pass when they are all ``str``, all
        ``int`` or all ``bool`` (equal values then have equal text). (``types``: the values' types,
        when the caller knows them.)"""
        kinds = frozenset((set(map(type, values)) if types is None else types) - {type(None)})
        if kinds not in _COUNTED_AS_IS:  # e.g. 1 and 1.0: one key to Counter, two texts here
            _add_each(self, values)
            return
        counts = Counter(values)
        counts.pop(None, None)
        vc = self.value_counts
        for value, n in counts.items():
            text = value if type(value) is str else str(value)
            vc[text] = vc.get(text, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "categorical",
            "cardinality": self.cardinality,
            "value_counts": dict(self.value_counts),
        }

    def __repr__(self) -> str:
        return f"CategoricalAggregate({self.cardinality} distinct)"


class NumericAggregate:
    """Minimum, maximum, mean and count of a number field (an empty one has min ``inf``, max
    ``-inf`` and mean 0, as atdata writes)."""

    kind = "numeric"

    def __init__(self) -> None:
        self.min = math.inf
        self.max = -math.inf
        self.total = 0.0
        self.count = 0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def add(self, value: Any) -> None:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"a numeric manifest field got {type(value).__name__} {str(value)[:40]!r}, not a number; "
                "mark the field ManifestField('categorical') or fix the value"
            ) from None
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v
        self.total += v
        self.count += 1

    def update(self, values: Sequence[Any], types: set[type] | None = None) -> None:
        """``add`` each value that is not None; plain ints, floats and bools in one vectorised pass
        with the same result (the sum is accumulated in order, the minimum and maximum are the first
        such values seen). ``values`` may be a numpy array of numbers. (``types``: the values'
        types, when the caller knows them.)"""
        if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
            arr = values.astype(np.float64, copy=False)
        else:
            seen = set(map(type, values)) if types is None else types
            kinds = seen - {type(None)}
            if not kinds <= {int, float, bool}:
                _add_each(self, values)
                return
            present = values if kinds == seen else [v for v in values if v is not None]
            try:
                arr = np.array(present, dtype=np.float64)
            except (OverflowError, TypeError, ValueError):  # ints beyond a float: as add() says
                _add_each(self, values)
                return
        if not len(arr):
            return
        lo = np.fmin.reduce(arr)  # NaN is never a minimum or a maximum (NaN < x is false)
        hi = np.fmax.reduce(arr)
        if lo < self.min:
            self.min = float(arr[np.argmax(arr == lo)]) if lo == 0 else float(lo)  # 0.0 or -0.0: the first
        if hi > self.max:
            self.max = float(arr[np.argmax(arr == hi)]) if hi == 0 else float(hi)
        with np.errstate(all="ignore"):  # overflow to inf, inf - inf: as float addition gives them
            self.total = float(np.cumsum(np.concatenate(([self.total], arr)))[-1])  # in order, as add() sums
        self.count += len(arr)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "numeric", "min": self.min, "max": self.max, "mean": self.mean, "count": self.count}

    def __repr__(self) -> str:
        return f"NumericAggregate(min={self.min}, max={self.max}, mean={self.mean}, count={self.count})"


class SetAggregate:
    """Every distinct item seen in a list field (by ``str(item)``; written sorted)."""

    kind = "set"

    def __init__(self, all_values: Iterable[str] = ()) -> None:
        self.all_values: set[str] = set(all_values)

    def add(self, values: Any) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise InvalidArgumentError(
                f"a set manifest field got {type(values).__name__}, not a list; mark the field "
                "ManifestField('categorical') or give a list"
            )
        for v in values:
            self.all_values.add(str(v))

    def update(self, values: Sequence[Any], types: set[type] | None = None) -> None:
        """``add`` each value that is not None."""
        _add_each(self, values)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "set", "all_values": sorted(self.all_values)}

    def __repr__(self) -> str:
        return f"SetAggregate({len(self.all_values)} values)"


Aggregate = CategoricalAggregate | NumericAggregate | SetAggregate


def create_aggregate(kind: str) -> Aggregate:
    """A new, empty collector for ``"categorical"``, ``"numeric"`` or ``"set"``.

    Raises:
        InvalidArgumentError: Another kind (a ``ValueError``).
    """
    if kind == "categorical":
        return CategoricalAggregate()
    if kind == "numeric":
        return NumericAggregate()
    if kind == "set":
        return SetAggregate()
    raise InvalidArgumentError(f"unknown aggregate kind {kind!r}: use 'categorical', 'numeric' or 'set'")


def merge_aggregates(parts: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """One field's aggregates of many shards (header dicts, as validated on reading) combined into
    the aggregate of all of them; ``None`` when the shards disagree on the kind."""
    parts = list(parts)
    if not parts:
        return None
    kind = parts[0].get("type")
    if any(p.get("type") != kind for p in parts):
        return None
    if kind == "categorical":
        counts: dict[str, int] = {}
        for p in parts:
            for k, n in p["value_counts"].items():
                counts[k] = counts.get(k, 0) + n
        return {"type": "categorical", "cardinality": len(counts), "value_counts": counts}
    if kind == "numeric":
        count = sum(p["count"] for p in parts)
        seen = [p for p in parts if p["count"]]
        total = sum(p["mean"] * p["count"] for p in seen)
        return {
            "type": "numeric",
            "min": min((p["min"] for p in seen), default=math.inf),
            "max": max((p["max"] for p in seen), default=-math.inf),
            "mean": total / count if count else 0.0,
            "count": count,
        }
    if kind == "set":
        values: set[str] = set()
        for p in parts:
            values.update(p["all_values"])
        return {"type": "set", "all_values": sorted(values)}
    return None
