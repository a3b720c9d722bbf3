"""Compare two schemas field by field and say what version the change deserves.

Verdicts:

* ``identical``: same fields, kinds, dtypes, optionality and order;
* ``compatible``: only optional fields were added (readers of the old schema keep working)
  -> next minor version;
* ``breaking``: anything else (a field removed, a required field added, a kind, dtype,
  optionality or list item type changed, fields reordered) -> next major version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidTypeError
from .schema import Field, Schema, bump_version

__all__ = ["schema_diff", "SchemaDiff", "FieldChange", "as_schema"]


@dataclass(frozen=True)
class FieldChange:
    """One row of a diff.

    Attributes:
        name: The field name.
        status: ``added``, ``removed``, ``changed`` or ``unchanged``.
        left: The field on the left side (None when added).
        right: The field on the right side (None when removed).
        changes: Precise descriptions, e.g. ``"dtype <f4 -> <f8"``, ``"optional -> required"``.
    """

    name: str
    status: str
    left: Field | None
    right: Field | None
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaDiff:
    """The field-by-field difference between ``left`` (older) and ``right`` (newer)."""

    left: Schema
    right: Schema
    fields: tuple[FieldChange, ...]
    verdict: str
    next_version: str
    notes: tuple[str, ...] = field(default=())

    @property
    def identical(self) -> bool:
        return self.verdict == "identical"

    def changed(self) -> list[FieldChange]:
        return [f for f in self.fields if f.status != "unchanged"]

    def summary(self) -> str:
        """One line per change, then the verdict."""
        lines = []
        for f in self.fields:
            if f.status == "added":
                lines.append(f"+ {f.name}: {f.right.describe()}")
            elif f.status == "removed":
                lines.append(f"- {f.name}: {f.left.describe()}")
            elif f.status == "changed":
                lines.append(f"~ {f.name}: {'; '.join(f.changes)}")
        lines.extend(self.notes)
        lines.append(f"{self.verdict}: use version {self.next_version}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {
            "left": self.left.ref,
            "right": self.right.ref,
            "verdict": self.verdict,
            "next_version": self.next_version,
            "fields": [
                {
                    "name": f.name,
                    "status": f.status,
                    "left": f.left.describe() if f.left else None,
                    "right": f.right.describe() if f.right else None,
                    "changes": list(f.changes),
                }
                for f in self.fields
            ],
            "notes": list(self.notes),
        }


def _type_changes(a: Any, b: Any, prefix: str = "") -> list[str]:
    out = []
    if a.kind != b.kind:
        return [f"{prefix}kind {a.kind} -> {b.kind}"]
    if a.kind == "ndarray" and a.dtype != b.dtype:
        out.append(f"{prefix}dtype {a.dtype or 'any'} -> {b.dtype or 'any'}")
    if a.kind == "list":
        ai, bi = a.items, b.items
        if (ai is None) != (bi is None):
            out.append(f"{prefix}list item type {ai.describe() if ai else 'any'} -> {bi.describe() if bi else 'any'}")
        elif ai is not None and bi is not None:
            inner = _type_changes(ai, bi)
            if inner:
                out.append(f"{prefix}list item type {ai.describe()} -> {bi.describe()}")
    return out


def as_schema(obj: Any, resolver: Any = None) -> Schema:
    """Coerce a sample type, a local schema record dict, or a Schema into a Schema.

    ``resolver`` (an :class:`~atdata_lab.index.Index`) resolves refs, at:// URIs and entries.
    """
    if isinstance(obj, Schema):
        return obj
    if isinstance(obj, type):
        return Schema.from_type(obj)
    if isinstance(obj, dict):
        if "fields" in obj:
            return Schema.from_record(obj)
        if "schema" in obj and isinstance(obj.get("schema"), dict):  # an ATProto schema record
            from .atmosphere.records import local_schema_from_record

            return Schema.from_record(local_schema_from_record(obj))
    if resolver is not None:
        return resolver.resolve_schema(obj)
    raise InvalidTypeError(
        f"cannot compare {type(obj).__name__}: pass a sample type, a schema record, a Schema, "
        "or a ref/URI/entry together with an index"
    )


def schema_diff(a: Any, b: Any, *, index: Any = None) -> SchemaDiff:
    """Compare schema ``a`` (older) with ``b`` (newer).

    Args:
        a, b: Sample types, Schema objects or local schema records; with ``index=``, also
            local refs, at:// schema URIs and IndexEntry objects.
    """
    left, right = as_schema(a, index), as_schema(b, index)
    lf = {f.name: f for f in left.fields}
    rf = {f.name: f for f in right.fields}
    rows: list[FieldChange] = []
    breaking = False
    added_optional = False
    for f in left.fields:
        g = rf.get(f.name)
        if g is None:
            rows.append(FieldChange(f.name, "removed", f, None))
            breaking = True
            continue
        changes = _type_changes(f.type, g.type)
        if f.optional != g.optional:
            changes.append(f"{'optional' if f.optional else 'required'} -> {'optional' if g.optional else 'required'}")
        if changes:
            rows.append(FieldChange(f.name, "changed", f, g, tuple(changes)))
            breaking = True
        else:
            rows.append(FieldChange(f.name, "unchanged", f, g))
    for g in right.fields:
        if g.name not in lf:
            rows.append(FieldChange(g.name, "added", None, g))
            if g.optional:
                added_optional = True
            else:
                breaking = True
    notes = []
    common_l = [f.name for f in left.fields if f.name in rf]
    common_r = [g.name for g in right.fields if g.name in lf]
    if common_l != common_r:
        notes.append("fields were reordered")
        breaking = True
    if breaking:
        verdict, nxt = "breaking", bump_version(left.version, "major")
    elif added_optional:
        verdict, nxt = "compatible", bump_version(left.version, "minor")
    else:
        verdict, nxt = "identical", left.version
    return SchemaDiff(left, right, tuple(rows), verdict, nxt, tuple(notes))
