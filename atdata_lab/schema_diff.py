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

from .atmosphere.records import local_schema_from_record
from .entry import IndexEntry
from .errors import InvalidTypeError
from .schema import Field, Schema, bump_version
from .views import schema as schema_views

__all__ = [
    "FieldChange",
    "ResolvedSchema",
    "SchemaComparison",
    "SchemaDiff",
    "as_schema",
    "compare_schemas",
    "resolve_schema",
    "schema_diff",
]


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
            if f.status == "added" and f.right is not None:
                lines.append(f"+ {f.name}: {f.right.describe()}")
            elif f.status == "removed" and f.left is not None:
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
            out.append(
                f"{prefix}list item type {ai.describe() if ai else 'any'} -> {bi.describe() if bi else 'any'}"
            )
        elif ai is not None and bi is not None:
            inner = _type_changes(ai, bi)
            if inner:
                out.append(f"{prefix}list item type {ai.describe()} -> {bi.describe()}")
    return out


@dataclass(frozen=True)
class ResolvedSchema:
    """A schema and where it came from (what :func:`resolve_schema` returns).

    Attributes:
        label: ``Name@version``.
        source: ``sample type``, ``local schema``, ``published schema``, ``schema record``,
            ``index entry`` or ``schema``.
        where: The class, ref, at:// URI or entry name it came from.
        schema: The resolved :class:`~atdata_lab.schema.Schema`.
        record: The raw record: as given (a dict), as stored in the index, as published on the
            PDS, or the local record of a sample type.
    """

    label: str
    source: str
    where: str
    schema: Schema
    record: dict[str, Any]

    @property
    def title(self) -> str:
        """``FeatureSample@1.0.0 (local schema atdata://local/schema/...)``."""
        return schema_views.side_title(self)


def _resolved(schema: Schema, source: str, where: str, record: dict[str, Any]) -> ResolvedSchema:
    return ResolvedSchema(f"{schema.name}@{schema.version}", source, where, schema, record)


def resolve_schema(obj: Any, index: Any = None) -> ResolvedSchema:
    """THE schema resolver: a sample type, a :class:`Schema`, a schema record dict (local or
    ATProto form), a local schema ref, an ``at://`` schema URI, or an :class:`IndexEntry`, as a
    schema together with where it came from.

    Args:
        obj: The input (a :class:`ResolvedSchema` is returned as it is).
        index: Holds local refs (required for them); an entry's own index is used when none is
            given. Its atmosphere (else ``ATDATA_PDS_URL``) reads ``at://`` URIs.

    Raises:
        TypeError: ``obj`` is none of the above, or a local ref comes without an index.
        KeyError: a local ref that the index does not hold.
        RecordValidationError: an ``at://`` URI that is not ``at://<did>/<schema NSID>/<rkey>``.
    """
    if isinstance(obj, ResolvedSchema):
        return obj
    if isinstance(obj, IndexEntry):
        side = resolve_schema(obj.schema_ref, index if index is not None else obj._index)
        return ResolvedSchema(side.label, "index entry", obj.name, side.schema, side.record)
    if isinstance(obj, Schema):
        return _resolved(obj, "schema", obj.ref, obj.to_record())
    if isinstance(obj, type):
        s = Schema.from_type(obj)
        return _resolved(s, "sample type", f"{obj.__module__}.{obj.__qualname__}", s.to_record())
    if isinstance(obj, dict):
        if "fields" in obj:
            s = Schema.from_record(obj)
        elif isinstance(obj.get("schema"), dict):
            s = Schema.from_record(local_schema_from_record(obj))
        else:
            raise InvalidTypeError("a schema record needs 'fields' (local form) or 'schema' (ATProto form)")
        return _resolved(s, "schema record", "", dict(obj))
    if isinstance(obj, str):
        if obj.startswith("at://"):
            # lazily: the promotion package compares schemas with this module
            from .promotion.published import read_schema_record

            record = read_schema_record(index, obj)
            return _resolved(
                Schema.from_record(local_schema_from_record(record)), "published schema", obj, record
            )
        if index is None:
            raise InvalidTypeError(f"cannot compare {obj!r}: a local schema ref needs an index (pass index=)")
        record = index.get_schema(obj)
        return _resolved(Schema.from_record(record), "local schema", obj, record)
    raise InvalidTypeError(
        f"cannot compare {type(obj).__name__}: pass a sample type, a Schema, a schema record dict, an IndexEntry, "
        "or a local schema ref or an at:// schema URI (with an index)"
    )


def as_schema(obj: Any, resolver: Any = None) -> Schema:
    """``resolve_schema(obj, resolver).schema``: the schema alone."""
    return resolve_schema(obj, resolver).schema


def schema_diff(a: Any, b: Any, *, index: Any = None) -> SchemaDiff:
    """Compare schema ``a`` (older) with ``b`` (newer).

    Args:
        a, b: Anything :func:`resolve_schema` takes: sample types, Schema objects, schema records,
            IndexEntry objects, at:// schema URIs; with ``index=``, also local refs.
    """
    left, right = resolve_schema(a, index).schema, resolve_schema(b, index).schema
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
            changes.append(
                f"{'optional' if f.optional else 'required'} -> {'optional' if g.optional else 'required'}"
            )
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


@dataclass(frozen=True)
class SchemaComparison:
    """Two resolved sides and their :class:`SchemaDiff` (what the SchemaDiff widget shows)."""

    left: ResolvedSchema
    right: ResolvedSchema
    diff: SchemaDiff

    @property
    def rows(self) -> list[schema_views.DiffRow]:
        return schema_views.diff_rows(self.diff)

    @property
    def verdict(self) -> str:
        return self.diff.verdict

    @property
    def next_version(self) -> str:
        return self.diff.next_version

    def summary(self) -> str:
        return f"{self.left.title} -> {self.right.title}\n{self.diff.summary()}"

    def _repr_html_(self) -> str:
        return schema_views.comparison_html(self)


def compare_schemas(a: Any, b: Any, index: Any = None) -> SchemaComparison:
    """Resolve ``a`` (older, left) and ``b`` (newer, right) and diff them. See :func:`resolve_schema`."""
    left, right = resolve_schema(a, index), resolve_schema(b, index)
    return SchemaComparison(left, right, schema_diff(left.schema, right.schema))
