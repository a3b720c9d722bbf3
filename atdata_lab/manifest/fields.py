"""Which fields of a sample type go into its shards' manifests, and which statistic each gets.

``Annotated[T, ManifestField("categorical" | "numeric" | "set")]`` chooses explicitly (and
``ManifestField(..., exclude=True)`` leaves a field out); every other field is chosen by its kind,
as atdata 0.7 does: ``str`` and ``bool`` are categorical, ``int`` and ``float`` numeric,
``list[T]`` a set, and arrays, bytes, dicts and a bare ``list`` stay out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidArgumentError, InvalidTypeError
from ..schema import fields_of, type_hints

__all__ = ["AggregateKind", "ManifestField", "resolve_manifest_fields", "AGGREGATE_KINDS"]

AggregateKind = Literal["categorical", "numeric", "set"]
AGGREGATE_KINDS: tuple[str, ...] = ("categorical", "numeric", "set")


@dataclass(frozen=True)
class ManifestField:
    """Marks a field for the manifests: ``label: Annotated[str, ManifestField("categorical")]``.

    Attributes:
        aggregate: The per-shard statistic: ``"categorical"`` (value counts), ``"numeric"``
            (min, max, mean, count) or ``"set"`` (every value seen in a list field).
        exclude: Leave the field out even though its kind would put it in.
    """

    aggregate: AggregateKind
    exclude: bool = False

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATE_KINDS:
            raise InvalidArgumentError(
                f"ManifestField({self.aggregate!r}): the aggregate must be one of "
                f"{', '.join(map(repr, AGGREGATE_KINDS))}"
            )


def _marker(annotation: Any) -> ManifestField | None:
    """The ``ManifestField`` in ``Annotated[T, ...]``'s metadata (the outermost annotation only,
    as atdata reads it)."""
    for item in getattr(annotation, "__metadata__", ()):
        if isinstance(item, ManifestField):
            return item
    return None


def _inferred(kind: str, items_kind: str | None, has_items: bool) -> AggregateKind | None:
    if kind in ("str", "bool"):
        return "categorical"
    if kind in ("int", "float"):
        return "numeric"
    if kind == "list" and has_items and items_kind != "ndarray":
        return "set"
    return None


def resolve_manifest_fields(sample_type: type) -> dict[str, ManifestField]:
    """``{field name: ManifestField}`` for the fields of ``sample_type`` that go into manifests,
    in declaration order (explicit markers first in authority, then inference by kind).

    Raises:
        InvalidTypeError: ``sample_type`` is not a dataclass / ``@packable`` class (a ``TypeError``).
    """
    if not (isinstance(sample_type, type) and dataclasses.is_dataclass(sample_type)):
        raise InvalidTypeError(
            f"{getattr(sample_type, '__name__', sample_type)!r} is not a sample type: manifests need a "
            "@atdata.packable class (a dataclass)"
        )
    hints = type_hints(sample_type)
    out: dict[str, ManifestField] = {}
    for f in fields_of(sample_type):
        explicit = _marker(hints.get(f.name))
        if explicit is not None:
            if not explicit.exclude:
                out[f.name] = explicit
            continue
        items = f.type.items
        kind = _inferred(f.type.kind, items.kind if items is not None else None, items is not None)
        if kind is not None:
            out[f.name] = ManifestField(kind)
    return out


def infer_fields_from_values(values: dict[str, Any]) -> dict[str, ManifestField]:
    """For samples without declared types (``DictSample``): the fields chosen by the Python types of
    one sample's values, with the same rules as :func:`resolve_manifest_fields`."""
    out: dict[str, ManifestField] = {}
    for name, v in values.items():
        if isinstance(v, (str, bool)):
            out[name] = ManifestField("categorical")
        elif isinstance(v, (int, float)):
            out[name] = ManifestField("numeric")
        elif isinstance(v, list) and not any(hasattr(x, "__array__") for x in v):
            out[name] = ManifestField("set")
    return out
