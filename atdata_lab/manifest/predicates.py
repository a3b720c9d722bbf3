"""Queries written as expressions over manifest fields: ``(F.confidence > 0.9) & (F.label == "dog")``.

``F.name`` (any field) or ``query_fields(SampleType).name`` (the type's manifest fields, so a
typo fails at once) gives a :class:`FieldProxy`; its comparisons (``==``, ``!=``, ``<``, ``<=``,
``>``, ``>=``), ``.isin(values)`` and ``.between(low, high)`` give a :class:`Predicate`, which
combines with ``&``, ``|`` and ``~``. A predicate is called on a manifest's DataFrame and returns
the boolean mask (pandas semantics: a comparison with a missing value is false), so it goes
wherever atdata's ``where=lambda df: ...`` goes.

Unlike a lambda, a predicate can also be checked against a shard's header statistics
(:meth:`Predicate.may_match`): shards whose statistics rule every sample out are skipped without
reading their rows.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterable
from typing import Any

from ..errors import InvalidArgumentError, InvalidTypeError
from .fields import resolve_manifest_fields

__all__ = ["F", "FieldProxy", "Predicate", "query_fields"]

COMPARISONS = {  # op name -> (Python symbol, function): the one table of comparisons
    "eq": ("==", operator.eq),
    "ne": ("!=", operator.ne),
    "lt": ("<", operator.lt),
    "le": ("<=", operator.le),
    "gt": (">", operator.gt),
    "ge": (">=", operator.ge),
}
_EXACT = 2.0**53  # floats hold every integer up to here: statistics beyond it are not compared


class Predicate:
    """A condition on manifest fields: a comparison, or ``&`` / ``|`` / ``~`` of conditions.

    ``pred(df)`` is the boolean mask of the rows that match; ``pred.compile()`` returns that
    function (atdata's name).
    """

    __slots__ = ("op", "field", "value", "parts")
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self, op: str, *, field: str | None = None, value: Any = None, parts: tuple[Predicate, ...] = ()
    ) -> None:
        self.op = op
        self.field = field
        self.value = value
        self.parts = parts

    # combining
    def __and__(self, other: Predicate) -> Predicate:
        if not isinstance(other, Predicate):
            return NotImplemented
        return Predicate("and", parts=(*self._flat("and"), *other._flat("and")))

    def __or__(self, other: Predicate) -> Predicate:
        if not isinstance(other, Predicate):
            return NotImplemented
        return Predicate("or", parts=(*self._flat("or"), *other._flat("or")))

    def __invert__(self) -> Predicate:
        return Predicate("not", parts=(self,))

    def _flat(self, op: str) -> tuple[Predicate, ...]:
        return self.parts if self.op == op else (self,)

    def __bool__(self) -> bool:
        raise InvalidTypeError(
            f"{self!r} has no truth value: combine conditions with & | ~ (not and/or/not), and write "
            "a range as F.x.between(low, high) or (low < F.x) & (F.x < high), not low < F.x < high"
        )

    # evaluating
    def __call__(self, df: Any) -> Any:
        """The boolean mask of ``df``'s rows that match."""
        if self.op == "and":
            return functools.reduce(operator.and_, (p(df) for p in self.parts))
        if self.op == "or":
            return functools.reduce(operator.or_, (p(df) for p in self.parts))
        if self.op == "not":
            return ~self.parts[0](df)
        if self.field not in df.columns:
            raise InvalidArgumentError(
                f"no manifest field {self.field!r} (fields: "
                f"{', '.join(c for c in df.columns if not str(c).startswith('__')) or 'none'})"
            )
        col = df[self.field]
        if self.op == "isin":
            return col.isin(self.value)
        return COMPARISONS[self.op][1](col, self.value)

    def _field_names(self) -> set[str]:
        """The fields this predicate reads."""
        if self.parts:
            return set().union(*(p._field_names() for p in self.parts))
        return {self.field} if self.field is not None else set()

    def compile(self) -> Any:
        """This predicate as a function of a DataFrame (the predicate itself is one)."""
        return self.__call__

    def may_match(self, aggregates: dict[str, dict[str, Any]]) -> bool:
        """False only when a shard's header statistics prove that no sample of it matches.

        Conservative: whatever the statistics cannot decide may match (``!=`` and ``~`` always may,
        as may values compared with text, and numbers beyond 2**53).
        """
        if self.op == "and":
            return all(p.may_match(aggregates) for p in self.parts)
        if self.op == "or":
            return any(p.may_match(aggregates) for p in self.parts)
        if self.op == "not":
            return True
        agg = aggregates.get(self.field or "")
        if not isinstance(agg, dict):
            return True
        kind = agg.get("type")
        if kind == "numeric":
            return _numeric_may_match(self.op, self.value, agg)
        if kind == "categorical" and self.op in ("eq", "isin"):
            wanted = [self.value] if self.op == "eq" else list(self.value)
            if not all(isinstance(v, str) for v in wanted):
                return True
            counts = agg.get("value_counts") or {}
            return any(v in counts for v in wanted)
        return True

    def __repr__(self) -> str:
        if self.op in ("and", "or"):
            sep = " & " if self.op == "and" else " | "
            return "(" + sep.join(repr(p) for p in self.parts) + ")"
        if self.op == "not":
            return f"~{self.parts[0]!r}"
        if self.op == "isin":
            return f"F.{self.field}.isin({list(self.value)!r})"
        return f"(F.{self.field} {COMPARISONS[self.op][0]} {self.value!r})"


def _real(v: Any) -> float | None:
    """``v`` as a float when it is a plain number statistics can be compared with, else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            import numpy as np

            if isinstance(v, np.number) and not isinstance(v, np.complexfloating):
                v = v.item()
            else:
                return None
        except ImportError:  # pragma: no cover - numpy is a dependency
            return None
    f = float(v)
    return f if math.isfinite(f) and abs(f) < _EXACT else None


def _numeric_may_match(op: str, value: Any, agg: dict[str, Any]) -> bool:
    if agg.get("count") == 0:
        return op in ("ne", "isin")  # every value missing: != is true of it (and isin may list NaN)
    lo, hi = agg.get("min"), agg.get("max")
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float))):
        return True
    if not (abs(lo) < _EXACT and abs(hi) < _EXACT):
        return True
    if op == "isin":
        vals = [_real(v) for v in value]
        if any(v is None for v in vals):
            return True
        return any(lo <= v <= hi for v in vals)  # type: ignore[operator]
    v = _real(value)
    if v is None or op == "ne":
        return True
    if op == "eq":
        return lo <= v <= hi
    if op == "lt":
        return lo < v
    if op == "le":
        return lo <= v
    if op == "gt":
        return hi > v
    if op == "ge":
        return hi >= v
    return True


class FieldProxy:
    """One manifest field in a query: comparisons give :class:`Predicate` s."""

    __slots__ = ("_name",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self._name = name

    def _cmp(self, op: str, value: Any) -> Predicate:
        if isinstance(value, (FieldProxy, Predicate)):
            raise InvalidTypeError(
                f"F.{self._name} compared with {value!r}: a query compares a field with a value, not "
                "with another field; use where=lambda df: df[a] < df[b] for that"
            )
        return Predicate(op, field=self._name, value=value)

    def __eq__(self, value: Any) -> Predicate:  # type: ignore[override]
        return self._cmp("eq", value)

    def __ne__(self, value: Any) -> Predicate:  # type: ignore[override]
        return self._cmp("ne", value)

    def __lt__(self, value: Any) -> Predicate:
        return self._cmp("lt", value)

    def __le__(self, value: Any) -> Predicate:
        return self._cmp("le", value)

    def __gt__(self, value: Any) -> Predicate:
        return self._cmp("gt", value)

    def __ge__(self, value: Any) -> Predicate:
        return self._cmp("ge", value)

    def isin(self, values: Iterable[Any]) -> Predicate:
        """The field's value is one of ``values``."""
        if isinstance(values, (str, bytes)):
            raise InvalidTypeError(
                f"F.{self._name}.isin() takes a list of values, not one {type(values).__name__}"
            )
        return Predicate("isin", field=self._name, value=tuple(values))

    def between(self, low: Any, high: Any) -> Predicate:
        """``low <= field <= high``."""
        return (self >= low) & (self <= high)

    def __repr__(self) -> str:
        return f"FieldProxy({self._name!r})"


class _AnyField:
    """``F``: ``F.name`` is the field ``name`` of whatever is queried."""

    __slots__ = ()

    def __getattr__(self, name: str) -> FieldProxy:
        if name.startswith("_"):
            raise AttributeError(name)
        return FieldProxy(name)

    def __getitem__(self, name: str) -> FieldProxy:
        """``F["field name"]`` for names that are not identifiers."""
        return FieldProxy(name)

    def __repr__(self) -> str:
        return "F"


F = _AnyField()


def query_fields(sample_type: type) -> Any:
    """An object whose attributes are the manifest fields of ``sample_type`` (as
    :class:`FieldProxy`), so ``Q = query_fields(T); Q.label == "dog"`` fails at once on a typo.

    Raises:
        InvalidTypeError: ``sample_type`` is not a sample type.
    """
    names = list(resolve_manifest_fields(sample_type))
    title = f"{sample_type.__name__}Fields"
    attrs: dict[str, Any] = {n: FieldProxy(n) for n in names}
    attrs["__slots__"] = ()
    attrs["__annotations__"] = dict.fromkeys(names, FieldProxy)
    attrs["__repr__"] = lambda self: f"{title}({', '.join(names)})"

    def missing(self: Any, name: str) -> Any:
        raise AttributeError(
            f"{sample_type.__name__} has no manifest field {name!r} (manifest fields: {', '.join(names) or 'none'})"
        )

    attrs["__getattr__"] = missing
    return type(title, (), attrs)()
