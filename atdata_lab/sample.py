"""Sample types: ``@packable`` dataclasses, ``DictSample``, and their msgpack encoding.

A sample is one msgpack map whose keys are the field names in declaration order
(atdata 0.7's format, byte for byte): str -> str, bytes -> bin, float -> float64, int -> int,
bool -> bool, None -> nil, list -> array, dict -> map, numpy scalars -> Python scalars, and
NDArray -> bin in the compact format of :mod:`atdata_lab.ndarray_codec`.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any, ClassVar, Protocol, TypeVar, dataclass_transform, runtime_checkable

import msgpack
import numpy as np

from .errors import InvalidArgumentError, SampleDecodeError
from .ndarray_codec import NDArrayFormatError, decode_ndarray, encode_ndarray, parse_ndarray_header
from .schema import Field, Schema, fields_of

__all__ = [
    "Packable",
    "PackableSample",
    "DictSample",
    "packable",
    "codec_for",
    "SampleCodec",
    "is_sample_type",
]

T = TypeVar("T")


@runtime_checkable
class Packable(Protocol):
    """What a sample type offers (atdata's structural protocol): ``packed`` and ``as_wds`` on
    samples, ``from_bytes`` and ``from_data`` on the type. ``@packable`` classes satisfy it."""

    @property
    def packed(self) -> bytes: ...

    @property
    def as_wds(self) -> dict[str, bytes]: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Any: ...

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Any: ...


class PackableSample:
    """Base of every sample type made with :func:`packable`.

    Subclasses are dataclasses; their fields decide the encoding. ``sample.packed`` is the
    msgpack bytes, ``Type.from_bytes(b)`` decodes them, ``sample.as_wds`` is the WebDataset
    dict (``{"msgpack": packed}``).
    """

    __slots__ = ()

    @property
    def packed(self) -> bytes:
        """This sample as msgpack bytes (atdata 0.7 format)."""
        return codec_for(type(self)).pack(self)

    @property
    def as_wds(self) -> dict[str, bytes]:
        """This sample as a WebDataset member dict (add ``"__key__"`` to write it)."""
        return {"msgpack": self.packed}

    @classmethod
    def from_bytes(cls: type[T], data: bytes) -> T:
        """Decode msgpack bytes into this type."""
        return codec_for(cls).unpack(data)

    @classmethod
    def from_data(cls: type[T], data: dict[str, Any]) -> T:
        """Build a sample from a decoded msgpack map (NDArray fields still as bytes)."""
        return codec_for(cls).from_mapping(data)

    @classmethod
    def schema(cls, version: str = "1.0.0") -> Schema:
        """The :class:`~atdata_lab.schema.Schema` of this type."""
        return Schema.from_type(cls, version=version)


@dataclass_transform()
def packable(cls: type[T]) -> type[T]:
    """Turn a class with annotated fields into a sample type (a dataclass that packs).

    Field kinds: str, int, float, bool, bytes, ``NDArray`` (any dtype; ``NDArray[np.uint8]``
    records that dtype), ``Optional[...]``, ``list[T]``, ``dict[str, ...]``, and fields
    inherited from another ``@packable`` class.

    Raises:
        TypeError: a field has an unsupported annotation (the message names it).
    """
    if "__dataclass_fields__" not in cls.__dict__:
        cls = dataclasses.dataclass(cls)
    if not issubclass(cls, PackableSample):
        ns = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
        cls = type(cls.__name__, (cls, PackableSample), ns)
    fields_of(cls)  # validate annotations now, not at first write
    return cls


def is_sample_type(obj: Any) -> bool:
    """True for ``@packable`` classes and :class:`DictSample`."""
    return isinstance(obj, type) and (
        issubclass(obj, (PackableSample, DictSample)) or dataclasses.is_dataclass(obj)
    )


# ------------------------------------------------------------------------------ encoding


def _plain(v: Any) -> Any:
    """Convert nested values for msgpack: numpy scalars -> Python, arrays -> NDArray bytes."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return encode_ndarray(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    return v


def _encode_value(f: Field, v: Any) -> Any:
    if v is None:
        if not f.optional:
            raise InvalidArgumentError(f"field {f.name!r} is None but not Optional")
        return None
    kind = f.type.kind
    if kind == "ndarray":
        return encode_ndarray(v if isinstance(v, np.ndarray) else np.asarray(v))
    if kind == "float":
        return float(v)
    if kind == "int":
        return int(v) if not isinstance(v, bool) else v
    if kind == "bool":
        return bool(v)
    if kind in ("str",):
        return v
    return _plain(v)


def _check_kind(f: Field, v: Any) -> Any:
    """Validate and convert one decoded value; raise ``ValueError`` with the reason."""
    kind = f.type.kind
    if type(v) is memoryview:  # a large sample's bin value, read in place: arrays decode from it
        if kind == "ndarray":
            return decode_ndarray(v)
        v = v.tobytes()
    if kind == "ndarray":
        if isinstance(v, bytes):
            return decode_ndarray(v)
        raise InvalidArgumentError(f"expected NDArray bytes, found {type(v).__name__}")
    if kind == "str":
        if isinstance(v, str):
            return v
    elif kind == "float":
        if isinstance(v, float):
            return v
        if isinstance(v, int) and not isinstance(v, bool):
            return float(v)
    elif kind == "int":
        if isinstance(v, int):
            return v
    elif kind == "bool":
        if isinstance(v, bool):
            return v
    elif kind == "bytes":
        if isinstance(v, bytes):
            return v
    elif kind == "list":
        if isinstance(v, list):
            items = f.type.items
            if items is not None and items.kind == "ndarray":
                return [decode_ndarray(x) if isinstance(x, bytes) else x for x in v]
            return v
    elif kind == "dict":
        if isinstance(v, dict):
            return v
    raise InvalidArgumentError(f"expected {f.type.describe()}, found {type(v).__name__}")


class SampleCodec:
    """Encodes and decodes one sample type (built once per type, see :func:`codec_for`)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fields = fields_of(cls)
        self.names = tuple(f.name for f in self.fields)
        self.by_name = {f.name: f for f in self.fields}

    def to_dict(self, sample: Any) -> dict[str, Any]:
        """The msgpack-ready map of a sample, in field order."""
        out = {}
        for f in self.fields:
            try:
                out[f.name] = _encode_value(f, getattr(sample, f.name))
            except (TypeError, ValueError, NDArrayFormatError) as e:
                raise type(e)(f"{self.cls.__name__}.{f.name}: {e}") from e
        return out

    def pack(self, sample: Any) -> bytes:
        return msgpack.packb(self.to_dict(sample), use_bin_type=True)

    def unpack(self, data: bytes | memoryview, where: str = "sample") -> Any:
        try:
            mapping = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as e:  # msgpack raises several exception types on bad input
            raise SampleDecodeError(f"{where}: not a valid msgpack sample ({e})") from e
        return self.from_mapping(mapping, where)

    def convert(self, mapping: Any, where: str = "sample") -> dict[str, Any]:
        """Validate a decoded map against the type; return constructor kwargs."""
        if not isinstance(mapping, dict):
            raise SampleDecodeError(
                f"{where}: a sample must be a msgpack map, found {type(mapping).__name__}"
            )
        kwargs: dict[str, Any] = {}
        for f in self.fields:
            v = mapping.get(f.name)
            if v is None:
                if f.optional:
                    kwargs[f.name] = None
                    continue
                what = "is None" if f.name in mapping else "is missing"
                raise SampleDecodeError(
                    f"{where}, field {f.name!r}: {what} but {self.cls.__name__}.{f.name} is not Optional"
                )
            try:
                kwargs[f.name] = _check_kind(f, v)
            except (ValueError, NDArrayFormatError) as e:
                raise SampleDecodeError(f"{where}, field {f.name!r}: {e}") from e
        return kwargs

    def from_mapping(self, mapping: Any, where: str = "sample") -> Any:
        return self.cls(**self.convert(mapping, where))


class _DictCodec:
    """Codec for schema-less :class:`DictSample` reading."""

    cls: ClassVar[type]
    fields: tuple[Field, ...] = ()
    names: tuple[str, ...] = ()

    def pack(self, sample: DictSample) -> bytes:
        return msgpack.packb(_plain(sample._data), use_bin_type=True)

    def to_dict(self, sample: DictSample) -> dict[str, Any]:
        return _plain(sample._data)

    def unpack(self, data: bytes | memoryview, where: str = "sample") -> DictSample:
        try:
            mapping = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as e:
            raise SampleDecodeError(f"{where}: not a valid msgpack sample ({e})") from e
        return self.from_mapping(mapping, where)

    def convert(self, mapping: Any, where: str = "sample") -> dict[str, Any]:
        if not isinstance(mapping, dict):
            raise SampleDecodeError(
                f"{where}: a sample must be a msgpack map, found {type(mapping).__name__}"
            )
        return {str(k): _maybe_array(v) for k, v in mapping.items()}

    def from_mapping(self, mapping: Any, where: str = "sample") -> DictSample:
        return DictSample(self.convert(mapping, where))


def _maybe_array(v: Any) -> Any:
    """For schema-less reading: bytes that are a well-formed NDArray payload become arrays."""
    if isinstance(v, bytes) and len(v) >= 3:
        if v[:6] == b"\x93NUMPY":
            try:
                return decode_ndarray(v)
            except NDArrayFormatError:
                return v
        try:
            parse_ndarray_header(v)
        except NDArrayFormatError:
            return v
        return decode_ndarray(v)
    return v


class DictSample:
    """A schema-less sample: ``sample["field"]`` and ``sample.field`` both work.

    NDArray payloads are recognised by their header and decoded to arrays; other bin
    values stay bytes.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any] | None = None, **fields: Any) -> None:
        d = dict(data or {})
        d.update(fields)
        object.__setattr__(self, "_data", d)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(
                f"DictSample has no field {name!r} (fields: {', '.join(self._data)})"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def keys(self):
        return self._data.keys()

    def items(self):
        return self._data.items()

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DictSample):
            return NotImplemented
        if self._data.keys() != other._data.keys():
            return False
        for k, v in self._data.items():
            w = other._data[k]
            if isinstance(v, np.ndarray) or isinstance(w, np.ndarray):
                if not (isinstance(v, np.ndarray) and isinstance(w, np.ndarray) and np.array_equal(v, w)):
                    return False
            elif v != w:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for k, v in self._data.items():
            if isinstance(v, np.ndarray):
                parts.append(f"{k}=ndarray({v.dtype.str}, {v.shape})")
            else:
                r = repr(v)
                parts.append(f"{k}={r[:60] + '...' if len(r) > 60 else r}")
        return f"DictSample({', '.join(parts)})"

    @property
    def packed(self) -> bytes:
        return _DICT_CODEC.pack(self)

    @property
    def as_wds(self) -> dict[str, bytes]:
        return {"msgpack": self.packed}

    @classmethod
    def from_bytes(cls, data: bytes) -> DictSample:
        return _DICT_CODEC.unpack(data)


_DictCodec.cls = DictSample
_DICT_CODEC = _DictCodec()
_codecs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # classes redefined in notebooks can go


def codec_for(cls: type) -> Any:
    """The (cached) codec of a sample type."""
    c = _codecs.get(cls)
    if c is None:
        c = _DICT_CODEC if cls is DictSample else SampleCodec(cls)
        _codecs[cls] = c
    return c
