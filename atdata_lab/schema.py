"""Schemas: the field model of a sample type, its local record, its content identity.

A :class:`Schema` is the description of a sample type that travels with a dataset:

* built from a ``@packable`` class (:meth:`Schema.from_type`), refined with the dtypes and
  shapes actually written (:meth:`Schema.with_hints`);
* stored as a *local schema record*, atdata's local format (``fields`` with ``local#primitive``,
  ``local#ndarray``, ``local#array``; we add ``local#dict`` and dtype/shape hints), under the ref
  ``atdata://local/schema/{Name}@{version}``;
* identified by content: :meth:`Schema.content_cid` hashes the normalized field list (names,
  kinds, dtypes, optionality, order), never the description or creation time;
* turned back into a working sample type (:meth:`Schema.to_type`), so data can be read
  without the original class.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
import types
import typing
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .cid import cid_for
from .errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NotFoundError,
    RecordValidationError,
    SchemaError,
)

__all__ = [
    "Field",
    "FieldType",
    "Schema",
    "fields_of",
    "parse_schema_ref",
    "schema_ref",
    "schema_to_type",
    "type_hints",
    "SCHEMA_REF_PREFIX",
]

SCHEMA_REF_PREFIX = "atdata://local/schema/"
PRIMITIVES = ("str", "int", "float", "bool", "bytes")
_PRIMITIVE_TYPES: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool", bytes: "bytes"}
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?\Z")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}\Z")


def normalize_dtype(raw: Any, where: str) -> str | None:
    """A numpy dtype name or ``dtype.str`` as ``dtype.str`` (``"float32"`` -> ``"<f4"``); None stays None.

    Raises:
        RecordValidationError: not a dtype, or one an NDArray field cannot hold (object, structured).
    """
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > 64:
        raise RecordValidationError(f"{where}: expected a numpy dtype string like '<f4', got {raw!r:.80}")
    try:
        dt = np.dtype(raw)
    except Exception:  # numpy raises TypeError, ValueError, SyntaxError... for junk
        raise RecordValidationError(f"{where}: invalid dtype {raw!r}") from None
    if dt.kind in ("O", "V") or dt.fields is not None or dt.subdtype is not None:
        raise RecordValidationError(f"{where}: {raw!r} cannot be stored in an NDArray field")
    return dt.str


@dataclass(frozen=True)
class FieldType:
    """The kind of one field.

    Attributes:
        kind: ``str``, ``int``, ``float``, ``bool``, ``bytes``, ``ndarray``, ``list`` or ``dict``.
        dtype: For ``ndarray``: numpy ``dtype.str`` (``"<f4"``), or ``None`` for any dtype.
        shape: For ``ndarray``: a shape hint (``None`` entries vary). Not part of identity.
        items: For ``list``: the item type, or ``None`` for any item.
    """

    kind: str
    dtype: str | None = None
    shape: tuple[int | None, ...] | None = None
    items: FieldType | None = None

    def describe(self) -> str:
        """A short human-readable form: ``ndarray<f4[64]``, ``list[str]``, ``int``."""
        if self.kind == "ndarray":
            text = f"ndarray{self.dtype or '[any dtype]'}"
            if self.shape is not None:
                text += "[" + ",".join("?" if s is None else str(s) for s in self.shape) + "]"
            return text
        if self.kind == "list":
            return f"list[{self.items.describe() if self.items else 'any'}]"
        return self.kind

    def identity(self) -> dict[str, Any]:
        """The normalized form hashed into a schema's content CID (shape hints excluded)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "ndarray":
            out["dtype"] = self.dtype
        elif self.kind == "list":
            out["items"] = self.items.identity() if self.items else None
        return out

    def to_record(self) -> dict[str, Any]:
        """This type as a local schema ``fieldType``."""
        if self.kind in PRIMITIVES:
            return {"$type": "local#primitive", "primitive": self.kind}
        if self.kind == "ndarray":
            rec: dict[str, Any] = {"$type": "local#ndarray", "dtype": self.dtype}
            if self.shape is not None:
                rec["shape"] = list(self.shape)
            return rec
        if self.kind == "list":
            return {"$type": "local#array", "items": self.items.to_record() if self.items else None}
        return {"$type": "local#dict"}

    @classmethod
    def from_record(cls, rec: Any, where: str = "fieldType", _depth: int = 0) -> FieldType:
        """Parse a local schema ``fieldType`` (atdata's form or ours)."""
        if _depth > 32:
            raise RecordValidationError(f"{where}: nested more than 32 levels deep")
        if not isinstance(rec, dict):
            raise RecordValidationError(f"{where}: expected an object, got {type(rec).__name__}")
        t = rec.get("$type", "")
        if not isinstance(t, str):
            raise RecordValidationError(f"{where}.$type: expected a string, got {type(t).__name__}")
        if t.endswith("#primitive"):
            prim = rec.get("primitive")
            if prim not in PRIMITIVES:
                raise RecordValidationError(
                    f"{where}: unknown primitive {prim!r} (expected one of {', '.join(PRIMITIVES)})"
                )
            return cls(prim)
        if t.endswith("#ndarray"):
            dtype = normalize_dtype(rec.get("dtype"), f"{where}.dtype")
            shape = rec.get("shape")
            if shape is not None:
                if not isinstance(shape, list) or not all(
                    s is None or (isinstance(s, int) and s >= 0) for s in shape
                ):
                    raise RecordValidationError(
                        f"{where}: shape must be a list of non-negative ints or nulls"
                    )
                shape = tuple(shape)
            return cls("ndarray", dtype=dtype, shape=shape)
        if t.endswith("#array"):
            items = rec.get("items")
            return cls(
                "list", items=None if items is None else cls.from_record(items, where + ".items", _depth + 1)
            )
        if t.endswith("#dict"):
            return cls("dict")
        raise RecordValidationError(f"{where}: unknown field type {t!r}")

    def annotation(self) -> Any:
        """A Python annotation for this type (used by generated sample types)."""
        if self.kind in PRIMITIVES:
            return {"str": str, "int": int, "float": float, "bool": bool, "bytes": bytes}[self.kind]
        if self.kind == "ndarray":
            from numpy.typing import NDArray

            return NDArray[np.dtype(self.dtype).type] if self.dtype else NDArray  # type: ignore[misc]
        if self.kind == "list":
            return list[self.items.annotation()] if self.items else list  # type: ignore[misc]
        return dict[str, Any]


@dataclass(frozen=True)
class Field:
    """One field of a sample type: name, type, and whether it may be ``None``."""

    name: str
    type: FieldType
    optional: bool = False

    def describe(self) -> str:
        return self.type.describe() + (" | None" if self.optional else "")


# ---------------------------------------------------------------- annotations -> fields


def _from_annotation(ann: Any, where: str) -> tuple[FieldType, bool]:
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _from_annotation(typing.get_args(ann)[0], where)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(members) != 1:
            raise InvalidTypeError(f"field {where}: unions other than Optional[X] are not supported ({ann})")
        ft, _ = _from_annotation(members[0], where)
        return ft, True
    if ann in _PRIMITIVE_TYPES:
        return FieldType(_PRIMITIVE_TYPES[ann]), False
    if ann is np.ndarray or origin is np.ndarray:
        dtype = None
        args = typing.get_args(ann)
        if len(args) == 2:
            dargs = typing.get_args(args[1])
            if dargs and not isinstance(dargs[0], typing.TypeVar) and dargs[0] is not typing.Any:
                dtype = np.dtype(dargs[0]).str
        return FieldType("ndarray", dtype=dtype), False
    if ann is list or origin is list:
        args = typing.get_args(ann)
        items = _from_annotation(args[0], where + "[]")[0] if args else None
        return FieldType("list", items=items), False
    if ann is dict or origin is dict:
        args = typing.get_args(ann)
        if args and args[0] is not str:
            raise InvalidTypeError(f"field {where}: dict keys must be str ({ann})")
        return FieldType("dict"), False
    raise InvalidTypeError(
        f"field {where}: type {ann!r} is not supported; use str, int, float, bool, bytes, NDArray, "
        "list[...], dict[str, ...] or Optional[...] of these"
    )


_fields_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fallback_namespace() -> dict[str, Any]:
    from numpy.typing import NDArray

    ns: dict[str, Any] = {
        name: getattr(typing, name) for name in ("Optional", "Union", "List", "Dict", "Any", "Annotated")
    }
    ns.update({"NDArray": NDArray, "np": np, "numpy": np})
    return ns


def type_hints(cls: type) -> dict[str, Any]:
    """A class's annotations resolved, ``Annotated[...]`` metadata kept (string annotations naming
    things imported inside a function resolve against typing, numpy and ``NDArray``)."""
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except NameError:
        return typing.get_type_hints(cls, localns=_fallback_namespace(), include_extras=True)


def fields_of(cls: type) -> tuple[Field, ...]:
    """The fields of a packable class, in declaration order (inherited fields first)."""
    cached = _fields_cache.get(cls)
    if cached is not None:
        return cached
    schema = cls.__dict__.get("__atdata_schema__")
    if schema is not None:
        result = schema.fields
    else:
        if not dataclasses.is_dataclass(cls):
            raise InvalidTypeError(f"{cls.__name__} is not a sample type: decorate it with @atdata.packable")
        hints = type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            ft, optional = _from_annotation(hints.get(f.name, f.type), f"{cls.__name__}.{f.name}")
            out.append(Field(f.name, ft, optional))
        result = tuple(out)
    _fields_cache[cls] = result
    return result


# ---------------------------------------------------------------- refs and versions


def schema_ref(name: str, version: str) -> str:
    """The local ref of a schema: ``atdata://local/schema/{name}@{version}``."""
    return f"{SCHEMA_REF_PREFIX}{name}@{version}"


def parse_schema_ref(ref: str) -> tuple[str, str]:
    """Split a local schema ref (also atdata's older ``local://schemas/...`` form) into name, version."""
    for prefix in (SCHEMA_REF_PREFIX, "local://schemas/"):
        if ref.startswith(prefix):
            rest = ref[len(prefix) :]
            name, sep, version = rest.rpartition("@")
            if sep and name and version:
                return name.rsplit(".", 1)[-1] if prefix.startswith("local:") else name, version
    raise InvalidArgumentError(f"not a local schema ref: {ref!r} (expected {SCHEMA_REF_PREFIX}Name@1.0.0)")


def check_version(version: str) -> str:
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise InvalidArgumentError(f"version {version!r} is not a semantic version like '1.0.0'")
    return version


def bump_version(version: str, part: str) -> str:
    """``bump_version("1.2.3", "minor") == "1.3.0"``; ``part`` is major, minor or patch."""
    m = _SEMVER.match(version)
    if not m:
        return "1.0.0"
    major, minor, patch = (int(x) for x in m.groups()[:3])
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def version_key(version: str) -> tuple[int, int, int, str]:
    m = _SEMVER.match(version)
    if not m:
        return (-1, -1, -1, version)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), version)


# ---------------------------------------------------------------- the schema


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Schema:
    """A named, versioned description of a sample type."""

    name: str
    version: str
    fields: tuple[Field, ...]
    description: str | None = None
    created_at: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidArgumentError(
                f"schema name {self.name!r} is invalid: use letters, digits, '_', '.', '-' (at most 100), "
                "starting with a letter"
            )
        check_version(self.version)
        names = [f.name for f in self.fields]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise InvalidArgumentError(f"schema {self.name}: duplicate field names {sorted(dup)}")

    @property
    def ref(self) -> str:
        """``atdata://local/schema/{name}@{version}``."""
        return schema_ref(self.name, self.version)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFoundError(f"schema {self.name} has no field {name!r}")

    # -- identity
    def identity(self, *, erase_dtypes: bool = False) -> list[dict[str, Any]]:
        """The normalized field list that :meth:`content_cid` hashes."""
        out = []
        for f in self.fields:
            ident = f.type.identity()
            if erase_dtypes and "dtype" in ident:
                ident["dtype"] = None
            out.append({"name": f.name, "type": ident, "optional": f.optional})
        return out

    def content_cid(self, *, erase_dtypes: bool = False) -> str:
        """CID of the field list (names, kinds, dtypes, optionality, order).

        Args:
            erase_dtypes: Hash with every ndarray dtype as "any": how to compare with a
                record that carries no dtypes (atdata 0.7 records none).
        """
        return cid_for(self.identity(erase_dtypes=erase_dtypes))

    # -- construction
    @classmethod
    def from_type(
        cls, sample_type: type, *, version: str = "1.0.0", description: str | None = None
    ) -> Schema:
        """The schema of a ``@packable`` class. Its docstring becomes the description."""
        attached = sample_type.__dict__.get("__atdata_schema__")
        if attached is not None and version == attached.version and description is None:
            return attached
        if description is None:
            doc = sample_type.__doc__ or ""
            auto = doc.startswith(sample_type.__name__ + "(")  # dataclass's generated doc
            description = None if auto or not doc.strip() else " ".join(doc.split())
        return cls(sample_type.__name__, version, fields_of(sample_type), description, _now())

    def with_hints(self, dtypes: dict[str, str | None], shapes: dict[str, tuple | None]) -> Schema:
        """Fill ndarray fields that have no dtype (plain ``NDArray``) with what was written.

        Fields declared with a dtype keep it. Shape hints are replaced by the observed ones.
        """
        new = []
        for f in self.fields:
            if f.type.kind == "ndarray" and f.name in dtypes:
                ft = dataclasses.replace(
                    f.type, dtype=f.type.dtype or dtypes[f.name], shape=shapes.get(f.name, f.type.shape)
                )
                f = dataclasses.replace(f, type=ft)
            new.append(f)
        return dataclasses.replace(self, fields=tuple(new))

    def with_version(self, version: str) -> Schema:
        return dataclasses.replace(self, version=check_version(version), created_at=_now())

    # -- records
    def to_record(self) -> dict[str, Any]:
        """The local schema record (atdata's local format, plus hints and the content CID)."""
        rec: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "fields": [
                {"name": f.name, "fieldType": f.type.to_record(), "optional": f.optional} for f in self.fields
            ],
            "description": self.description,
            "createdAt": self.created_at or _now(),
            "contentCid": self.content_cid(),
        }
        return rec

    @classmethod
    def from_record(cls, rec: Any) -> Schema:
        """Parse a local schema record (atdata's or ours).

        Raises:
            RecordValidationError: (a ``ValueError``) naming the problem.
            SchemaError: (a ``ValueError``) a field name would shadow an attribute of sample types.
        """
        try:
            return cls._from_record(rec)
        except (RecordValidationError, SchemaError):
            raise
        except ValueError as e:  # e.g. an invalid name or version, found by Schema itself
            raise RecordValidationError(f"schema record: {e}") from None

    @classmethod
    def _from_record(cls, rec: Any) -> Schema:
        if not isinstance(rec, dict):
            raise RecordValidationError(f"a schema record must be an object, not {type(rec).__name__}")
        for key in ("name", "version", "fields"):
            if key not in rec:
                raise RecordValidationError(f"schema record is missing {key!r}")
        fields_raw = rec["fields"]
        if not isinstance(fields_raw, list):
            raise RecordValidationError("schema record 'fields' must be a list")
        fields = []
        for i, fr in enumerate(fields_raw):
            if (
                not isinstance(fr, dict)
                or not isinstance(fr.get("name"), str)
                or not fr["name"].isidentifier()
                or keyword.iskeyword(fr["name"])
            ):
                raise RecordValidationError(
                    f"schema record fields[{i}] needs a 'name' that is a Python identifier (not a keyword)"
                )
            check_field_name(fr["name"], f"schema record {rec.get('name')!r:.80} fields[{i}]")
            ft = FieldType.from_record(fr.get("fieldType"), f"fields[{i}].fieldType")
            fields.append(Field(fr["name"], ft, bool(fr.get("optional", False))))
        desc = rec.get("description")
        return cls(
            str(rec["name"]),
            str(rec["version"]),
            tuple(fields),
            desc if isinstance(desc, str) else None,
            rec.get("createdAt"),
        )

    # -- types
    def to_type(self, *, use_cache: bool = True) -> type:
        """A ``@packable`` class with these fields (cached per name and content; a new class each
        time with ``use_cache=False``).

        Raises:
            SchemaError: a field name would shadow a Python or library attribute.
        """
        key = (self.name, self.content_cid(), tuple(f.type.shape for f in self.fields))
        cached = _generated.get(key) if use_cache else None
        if cached is not None:
            return cached
        from .sample import packable

        for f in self.fields:
            check_field_name(f.name, f"schema {self.name}")

        specs: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for f in self.fields:
            ann = f.type.annotation()
            if f.optional:
                specs.append((f.name, ann | None, dataclasses.field(default=None)))
            else:
                specs.append((f.name, ann))
        cls = dataclasses.make_dataclass(self.name, specs, kw_only=True)
        cls.__doc__ = self.description or f"{self.name} (generated from schema {self.ref})"
        cls.__module__ = "atdata_lab.generated"
        cls.__atdata_schema__ = self  # type: ignore[attr-defined]
        out: Any = packable(cls)
        out.__atdata_schema__ = self
        if not use_cache:
            return out
        return _generated.setdefault(key, out)  # one class per schema, even when two threads race


_generated: dict[tuple, type] = {}


def _reserved_names() -> frozenset[str]:
    """Attribute names of every generated sample type (the sample base class, dataclass machinery,
    ``object``): a field with one of these names would replace a method the library calls."""
    global _RESERVED
    if _RESERVED is None:
        from .sample import PackableSample

        @dataclasses.dataclass
        class _Empty(PackableSample):
            pass

        _RESERVED = frozenset(n for n in dir(_Empty) if not (n.startswith("_") and not n.startswith("__")))
    return _RESERVED


_RESERVED: frozenset[str] | None = None


def check_field_name(name: str, where: str = "schema") -> str:
    """Refuse a field name a generated type cannot have: a dunder name (``__class__``, ``__dict__``)
    or an attribute of every sample type (``packed``, ``as_wds``, ``from_bytes``, ``schema``...).

    Raises:
        SchemaError: naming the field and why.
    """
    if name.startswith("__") and name.endswith("__") or name in _reserved_names():
        raise SchemaError(
            f"{where}: the field name {name!r} would shadow the attribute {name!r} of every sample "
            "type (dunder names and packed, as_wds, from_bytes, from_data, schema are reserved); "
            "the schema cannot be loaded as a sample type; read the shards as DictSample "
            "(sample_type=atdata.DictSample) or rename the field"
        )
    return name


def schema_to_type(schema: dict[str, Any] | Schema, *, use_cache: bool = True) -> type:
    """The ``@packable`` class a schema record (or :class:`Schema`) describes (atdata's name).

    Raises:
        RecordValidationError: The record is not a valid schema (a ``ValueError``).
        SchemaError: A field name would shadow an attribute of sample types (a ``ValueError``).
    """
    parsed = schema if isinstance(schema, Schema) else Schema.from_record(schema)
    return parsed.to_type(use_cache=use_cache)
