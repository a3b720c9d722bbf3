"""One shard's manifest: a JSON header (statistics) and a Parquet file (one row per sample).

The files sit beside the shard, named as atdata 0.7 names them: shard ``name-000000.tar`` has
``name-000000.manifest.json`` and ``name-000000.manifest.parquet``. The header holds atdata's keys
(``manifest_version``, ``shard_id``, ``schema_type``, ``schema_version``, ``num_samples``,
``size_bytes``, ``created_at``, ``aggregates``, optional ``provenance``); the Parquet rows hold
``__key__``, ``__offset__`` and ``__size__`` and one column per manifest field (strings, INT64,
DOUBLE, BOOLEAN; lists and dicts as JSON columns).

What we write differs only where atdata's values are wrong, and in two extra columns its reader
ignores: ``__offset__`` is where the sample's tar member starts in the shard (atdata documents
that, but writes a running sum of payload sizes), ``size_bytes`` is the shard file's size,
``__data_offset__`` is where the sample's msgpack bytes start, so a query hit is read with one
ranged request of ``__size__`` bytes, and ``__sha256__`` is the sha256 digest (32 bytes) of those
msgpack bytes, so a hit read from a published shard is checked on its own: the manifest is
content-addressed by the dataset's record, and the sample's bytes must match its row.

Manifests read from elsewhere are untrusted: sizes are bounded, the header is validated key by
key, and the Parquet rows must agree with the header.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..errors import DataNotFoundError, ManifestError
from ..urls import is_local, local_path, open_url
from . import _deps

__all__ = [
    "MANIFEST_FORMAT_VERSION",
    "ShardManifest",
    "manifest_urls",
    "shard_id_for",
    "read_manifest",
    "read_manifest_bytes",
    "read_header",
]

MANIFEST_FORMAT_VERSION = "1.0.0"
JSON_SUFFIX = ".manifest.json"
PARQUET_SUFFIX = ".manifest.parquet"
KEY, OFFSET, SIZE, DATA_OFFSET = "__key__", "__offset__", "__size__", "__data_offset__"
SHA256 = "__sha256__"
RESERVED_COLUMNS = (KEY, OFFSET, SIZE, DATA_OFFSET, SHA256)
HEADER_MAX = 64 << 20  # bytes of a manifest header read at most
PARQUET_MAX = 1 << 30  # bytes of a manifest's Parquet file read at most
ROWS_MAX = 4 << 30  # bytes a manifest's rows may take once decompressed (as its metadata declares)


def manifest_urls(shard_url: str) -> tuple[str, str]:
    """``(json url, parquet url)`` of a shard's manifest: ``.tar`` replaced (atdata's names)."""
    base = shard_url[:-4] if shard_url.endswith(".tar") else shard_url
    return base + JSON_SUFFIX, base + PARQUET_SUFFIX


def shard_id_for(shard_url: str) -> str:
    """The shard id a manifest names its shard by: the file name without ``.tar`` (atdata's)."""
    name = shard_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".tar") else name


class ShardManifest:
    """A shard's manifest in memory (atdata's attributes).

    Attributes:
        shard_id: The shard's file name without ``.tar``.
        schema_type: The sample type's name.
        schema_version: The sample type's schema version.
        num_samples: Samples in the shard.
        size_bytes: Bytes of the shard.
        created_at: When the manifest was made (aware datetime).
        aggregates: ``{field: statistic dict}`` (see :mod:`.aggregates`).
        samples: A pandas DataFrame, one row per sample (read on first use when loaded from files).
        provenance: Optional ``source_job_id``, ``parent_shards``, ``pipeline_version``.
        shard_url: Where the shard is, when the manifest was loaded next to it (else None).
        content_addressed: True when both files were checked against content addresses (blob
            CIDs) that a published dataset's record names: then its per-sample hashes may stand
            in for the shard's checksum (each hit is checked on its own).
    """

    def __init__(
        self,
        shard_id: str,
        schema_type: str,
        schema_version: str,
        num_samples: int,
        size_bytes: int,
        created_at: datetime,
        aggregates: dict[str, dict[str, Any]],
        samples: Any = None,
        provenance: dict[str, Any] | None = None,
        *,
        shard_url: str | None = None,
        load_samples: Callable[[], Any] | None = None,
    ) -> None:
        self.shard_id = shard_id
        self.schema_type = schema_type
        self.schema_version = schema_version
        self.num_samples = num_samples
        self.size_bytes = size_bytes
        self.created_at = created_at
        self.aggregates = aggregates
        self.provenance = dict(provenance or {})
        self.shard_url = shard_url
        self.content_addressed = False
        self._samples = samples
        self._load = load_samples
        self._rows: dict[str, tuple[int, int, int, bytes]] | None = None

    @property
    def samples(self) -> Any:
        if self._samples is None:
            self._samples = self._load() if self._load is not None else _deps.pandas().DataFrame()
            self._load = None
        return self._samples

    @samples.setter
    def samples(self, df: Any) -> None:
        self._samples, self._load, self._rows = df, None, None

    @property
    def has_digests(self) -> bool:
        """Whether the rows hold each sample's sha256 and where its bytes are (ours do; atdata's not)."""
        df = self.samples
        return SHA256 in df.columns and DATA_OFFSET in df.columns

    def row_of(self, key: str) -> tuple[int, int, int, bytes] | None:
        """``(offset, data_offset, size, sha256 digest)`` of sample ``key``, or None when the rows
        have no such sample or no digests (a row with a malformed digest or offsets raises
        :class:`ManifestError`)."""
        if self._rows is None:
            df = self.samples
            rows: dict[str, tuple[int, int, int, bytes]] = {}
            if not df.empty and self.has_digests:
                for k, off, data, size, digest in zip(
                    df[KEY].tolist(),
                    df[OFFSET].tolist(),
                    df[DATA_OFFSET].tolist(),
                    df[SIZE].tolist(),
                    df[SHA256].tolist(),
                ):
                    rows.setdefault(str(k), (off, data, size, digest))
            self._rows = rows
        row = self._rows.get(key)
        if row is None:
            return None
        off, data, size, digest = row
        ints = [v for v in (off, data, size) if isinstance(v, (int, np.integer)) and not isinstance(v, bool)]
        if len(ints) != 3 or not isinstance(digest, bytes) or len(digest) != 32:
            raise ManifestError(
                f"manifest of shard {self.shard_id}: the row of sample {key!r} has no valid offsets, size and "
                "sha256 (32 bytes); the manifest is malformed: ask the publisher to rebuild it"
            )
        return int(off), int(data), int(size), digest

    def __repr__(self) -> str:
        return (
            f"ShardManifest({self.shard_id!r}, {self.schema_type}@{self.schema_version}, "
            f"{self.num_samples} samples, fields: {', '.join(self.aggregates) or 'none'})"
        )

    def header_dict(self) -> dict[str, Any]:
        """The JSON header (what ``.manifest.json`` holds)."""
        header: dict[str, Any] = {
            "manifest_version": MANIFEST_FORMAT_VERSION,
            "shard_id": self.shard_id,
            "schema_type": self.schema_type,
            "schema_version": self.schema_version,
            "num_samples": self.num_samples,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at.isoformat(),
            "aggregates": self.aggregates,
        }
        if self.provenance:
            header["provenance"] = self.provenance
        return header

    def header_bytes(self) -> bytes:
        """The ``.manifest.json`` file's bytes."""
        return json.dumps(self.header_dict(), indent=2).encode("utf-8")

    def to_bytes(self) -> tuple[bytes, bytes]:
        """``(json bytes, parquet bytes)``: the two files."""
        return self.header_bytes(), parquet_bytes(self.samples)

    @classmethod
    def from_header(
        cls, header: dict[str, Any], samples: Any = None, *, where: str = "manifest", **kw: Any
    ) -> ShardManifest:
        """A manifest from a header dict (validated: :class:`ManifestError` names what is wrong)."""
        h = validate_header(header, where)
        return cls(
            h["shard_id"],
            h["schema_type"],
            h["schema_version"],
            h["num_samples"],
            h["size_bytes"],
            h["created_at"],
            h["aggregates"],
            samples,
            h.get("provenance"),
            **kw,
        )

    @classmethod
    def from_files(cls, json_path: str | os.PathLike, parquet_path: str | os.PathLike) -> ShardManifest:
        """Load a manifest from its two files (local paths)."""
        jp, pp = os.fspath(json_path), os.fspath(parquet_path)
        header = parse_header(_read_local(jp, HEADER_MAX), jp)
        m = cls.from_header(header, where=jp)
        m.samples = rows_from_parquet(_read_local(pp, PARQUET_MAX), pp, m.num_samples)
        return m

    @classmethod
    def from_json_only(cls, json_path: str | os.PathLike) -> ShardManifest:
        """The header alone (``samples`` is an empty DataFrame): enough for shard-level statistics."""
        jp = os.fspath(json_path)
        m = cls.from_header(parse_header(_read_local(jp, HEADER_MAX), jp), where=jp)
        m.samples = _deps.pandas().DataFrame()
        return m


# ------------------------------------------------------------------------------------ header


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_aggregate(name: str, agg: Any, where: str) -> dict[str, Any]:
    if not isinstance(agg, dict):
        raise ManifestError(f"{where}: aggregates[{name!r}] is not an object")
    kind = agg.get("type")
    ok = True
    if kind == "categorical":
        counts = agg.get("value_counts")
        ok = isinstance(counts, dict) and all(
            isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0
            for k, n in counts.items()
        )
    elif kind == "numeric":
        ok = all(_is_number(agg.get(k)) for k in ("min", "max", "mean")) and (
            isinstance(agg.get("count"), int) and not isinstance(agg.get("count"), bool) and agg["count"] >= 0
        )
    elif kind == "set":
        values = agg.get("all_values")
        ok = isinstance(values, list) and all(isinstance(v, str) for v in values)
    # other kinds (a newer writer's) are kept as they are, and never used to skip a shard
    if not ok:
        raise ManifestError(f"{where}: aggregates[{name!r}] is not a valid {kind} statistic")
    return agg


def validate_header(header: Any, where: str) -> dict[str, Any]:
    """The header with ``created_at`` parsed; raises :class:`ManifestError` naming the bad key."""
    if not isinstance(header, dict):
        raise ManifestError(f"{where}: a manifest header must be a JSON object")
    version = header.get("manifest_version")
    if not isinstance(version, str) or version.split(".", 1)[0] != MANIFEST_FORMAT_VERSION.split(".", 1)[0]:
        raise ManifestError(
            f"{where}: manifest_version {version!r} is not one this version reads "
            f"({MANIFEST_FORMAT_VERSION}); upgrade atdata-lab, or rebuild the manifest"
        )
    out = dict(header)
    for key in ("shard_id", "schema_type", "schema_version", "created_at"):
        if not isinstance(header.get(key), str):
            raise ManifestError(f"{where}: {key} must be a string")
    for key in ("num_samples", "size_bytes"):
        v = header.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ManifestError(f"{where}: {key} must be a non-negative integer")
    try:
        created = datetime.fromisoformat(header["created_at"])
    except ValueError:
        raise ManifestError(f"{where}: created_at {header['created_at'][:40]!r} is not an ISO date") from None
    out["created_at"] = created if created.tzinfo else created.replace(tzinfo=UTC)
    aggs = header.get("aggregates", {})
    if not isinstance(aggs, dict):
        raise ManifestError(f"{where}: aggregates must be an object")
    out["aggregates"] = {str(k): _check_aggregate(k, v, where) for k, v in aggs.items()}
    prov = header.get("provenance", {})
    if not isinstance(prov, dict):
        raise ManifestError(f"{where}: provenance must be an object")
    out["provenance"] = prov
    return out


def parse_header(data: bytes, where: str) -> dict[str, Any]:
    try:
        return json.loads(data)  # NaN and Infinity are accepted: atdata writes them for empty statistics
    except (ValueError, RecursionError) as e:
        raise ManifestError(f"{where}: not a JSON manifest header ({str(e)[:120]})") from None


# ------------------------------------------------------------------------------------ parquet


def _plain(v: Any) -> Any:
    """A value as JSON can hold it (numpy arrays and scalars to lists and numbers, bytes and other
    objects to text)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, (tuple, set, frozenset)):
        return list(v)
    return str(v)  # anything else as its text, as the statistics count it


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _typed(pa: Any, col: Any, type_: Any) -> Any:
    """``col`` (a pandas Series) as an Arrow array of ``type_`` (missing values as nulls), or None
    when its values are not all of that type."""
    try:
        return pa.array(col, type_, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return None


def _column(pa: Any, name: str, col: Any) -> Any:
    """One Parquet column of a manifest, typed as atdata's writer types it: strings, INT64, DOUBLE,
    BOOLEAN, binary; lists, dicts and mixed values as a JSON column."""
    if name == KEY:
        got = _typed(pa, col, pa.string())
        return (
            got if got is not None else pa.array([None if _is_null(v) else str(v) for v in col], pa.string())
        )
    if name == SHA256:
        got = _typed(pa, col, pa.binary())
        return (
            got
            if got is not None
            else pa.array([v if isinstance(v, bytes) else None for v in col], pa.binary())
        )
    if name in (OFFSET, SIZE, DATA_OFFSET):
        got = _typed(pa, col, pa.int64())
        return (
            got if got is not None else pa.array([None if _is_null(v) else int(v) for v in col], pa.int64())
        )
    kind = getattr(col.dtype, "kind", "O")
    if kind in "biuf":
        got = _typed(pa, col, {"b": pa.bool_(), "f": pa.float64()}.get(kind, pa.int64()))
        if got is not None:
            return got  # else (uint64 beyond int64): as values, below
    cleaned: list[Any] = []
    types: set[type] = set()
    for v in col:
        if v is None or (type(v) is float and v != v):  # missing (NaN where pandas filled it)
            cleaned.append(None)
            continue
        if isinstance(v, np.generic):
            v = v.item()
        types.add(type(v))
        cleaned.append(v)
    for want, type_ in (
        ({str}, pa.string()),
        ({bool}, pa.bool_()),
        ({int}, pa.int64()),
        ({bytes}, pa.binary()),
    ):
        if types <= want:
            try:
                return pa.array(cleaned, type_)
            except (pa.ArrowInvalid, OverflowError):  # ints beyond int64
                break
    if types and types <= {int, float}:
        return pa.array([None if v is None else float(v) for v in cleaned], pa.float64())
    encode = json.JSONEncoder(default=_plain).encode
    return pa.array([None if v is None else encode(v) for v in cleaned], pa.json_(pa.string()))


# The value types (besides None) of a field's list of values that become an Arrow column at once,
# as _column would write the pandas column of those values; anything else goes through pandas.
_DIRECT = {
    frozenset(): "string",
    frozenset({str}): "string",
    frozenset({bool}): "bool_",
    frozenset({float}): "float64",
    frozenset({bytes}): "binary",
}


def _column_of_values(pa: Any, name: str, values: Any, types: set[type] | None = None) -> Any:
    """One column from a list of values (or an int64 or float64 numpy array): the Arrow array
    ``_column`` makes of ``pandas.Series(values)``, without making the Series in the usual cases
    (``types``: the values' types, when known)."""
    if isinstance(values, np.ndarray) and values.dtype in (np.int64, np.float64):
        return pa.array(values, from_pandas=True)  # NaN is missing, as in pandas
    seen = set(map(type, values)) if types is None else types
    kinds = frozenset(seen - {type(None)})
    type_ = _DIRECT.get(kinds)
    if kinds == {int} and type(None) not in seen:
        type_ = "int64"  # ints with a None are floats in pandas: those go through pandas
    if name in (OFFSET, SIZE, DATA_OFFSET) or (name == KEY and type_ != "string"):
        type_ = None
    if type_ is not None:
        try:
            return pa.array(values, getattr(pa, type_)(), from_pandas=True)  # NaN is missing, as in pandas
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass  # ints beyond int64, text that is not UTF-8: as pandas has them
    return _column(pa, name, _deps.pandas().Series(values))


def rows_table(columns: dict[str, Any], types: dict[str, set[type]] | None = None) -> Any:
    """A manifest's rows, given as ``{column: list of values}``, as the Arrow table
    :func:`parquet_bytes` writes (the table a DataFrame of those lists would give). ``types``: the
    types of some columns' values, when known."""
    pa, _ = _deps.pyarrow()
    known = types or {}
    return pa.table(
        {name: _column_of_values(pa, name, values, known.get(name)) for name, values in columns.items()}
    )


def parquet_bytes(rows: Any) -> bytes:
    """A manifest's rows (a DataFrame, or a table from :func:`rows_table`) as the bytes of its
    ``.manifest.parquet``.

    Text columns other than the keys are dictionary-encoded (they are mostly categories); keys,
    offsets and numbers are not (their values rarely repeat, and encoding them costs more than it
    saves)."""
    pa, pq = _deps.pyarrow()
    if isinstance(rows, pa.Table):
        table = rows
    else:
        table = pa.table({str(name): _column(pa, str(name), rows[name]) for name in rows.columns})
    dictionary = [
        f.name
        for f in table.schema
        if f.name not in (KEY, SHA256) and (pa.types.is_string(f.type) or pa.types.is_binary(f.type))
    ]
    buf = io.BytesIO()
    pq.write_table(table, buf, use_dictionary=dictionary)
    return buf.getvalue()


def rows_from_parquet(data: bytes, where: str, expected_rows: int) -> Any:
    """A ``.manifest.parquet`` as a DataFrame (JSON columns decoded to lists and dicts).

    Raises:
        ManifestError: Not Parquet, the row count differs from the header's ``num_samples`` (the two
            files are from different writes), or a required column is missing.
    """
    pa, pq = _deps.pyarrow()
    pd = _deps.pandas()
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ManifestError(f"{where}: not a Parquet file ({str(e)[:120]})") from None
    rows = pf.metadata.num_rows
    if rows != expected_rows:
        raise ManifestError(
            f"{where}: {rows} rows, but its header says {expected_rows} samples: the two files are from "
            "different writes; rebuild the manifest (index.build_manifests(name))"
        )
    declared = sum(pf.metadata.row_group(i).total_byte_size for i in range(pf.metadata.num_row_groups))
    if declared > ROWS_MAX:
        raise ManifestError(
            f"{where}: its rows take {declared} bytes decompressed, more than the {ROWS_MAX} allowed"
        )
    names = pf.schema_arrow.names
    if not names and rows == 0:
        return pd.DataFrame()
    missing = [c for c in (KEY, OFFSET, SIZE) if c not in names]
    if missing:
        raise ManifestError(f"{where}: no column {', '.join(missing)}; this is not a shard manifest")
    json_cols = {
        pf.schema.column(i).name
        for i in range(len(pf.schema))
        if pf.schema.column(i).logical_type.type == "JSON"
    }
    try:
        table = pf.read(use_threads=False)  # small files: threads cost more than they save
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ManifestError(f"{where}: unreadable Parquet ({str(e)[:120]})") from None
    decoded: dict[str, list[Any]] = {}
    for i, field in enumerate(table.schema):
        if field.name in json_cols or isinstance(field.type, pa.JsonType):
            text = table.column(i).cast(pa.string()).to_pylist()
            try:
                decoded[field.name] = [None if v is None else json.loads(v) for v in text]
            except (ValueError, RecursionError):
                raise ManifestError(f"{where}: column {field.name!r} holds invalid JSON") from None
            table = table.set_column(i, field.name, pa.nulls(len(text)))
    df = table.to_pandas(ignore_metadata=True, use_threads=False)
    for name, values in decoded.items():
        df[name] = pd.Series(values, dtype=object, index=df.index)
    return df


# ------------------------------------------------------------------------------------ reading


def _read_local(path: str, limit: int) -> bytes:
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise DataNotFoundError(f"no manifest file {path}") from None
    if size > limit:
        raise ManifestError(f"{path}: {size} bytes, more than the {limit} a manifest file may have")
    with open(path, "rb") as f:
        return f.read(limit + 1)


def _read(url: str, storage_options: dict[str, Any] | None, limit: int) -> bytes | None:
    """The bytes at ``url`` (at most ``limit``), or None when there is no such file."""
    if is_local(url):
        try:
            return _read_local(local_path(url), limit)
        except DataNotFoundError:
            return None
    try:
        with open_url(url, storage_options) as f:
            data = f.read(limit + 1)
    except FileNotFoundError:  # our ShardNotFoundError (404/410) is one
        return None
    if len(data) > limit:
        raise ManifestError(f"{url}: more than the {limit} bytes a manifest file may have")
    return data


def read_manifest_bytes(
    shard_url: str, storage_options: dict[str, Any] | None = None
) -> tuple[dict[str, Any], bytes, bytes | None] | None:
    """``(validated header, header bytes, Parquet bytes or None)`` of a shard's manifest files as
    they are (bounded), or None when the shard has no manifest: what a promotion publishes."""
    json_url, parquet_url = manifest_urls(shard_url)
    data = _read(json_url, storage_options, HEADER_MAX)
    if data is None:
        return None
    header = validate_header(parse_header(data, json_url), json_url)
    return header, data, _read(parquet_url, storage_options, PARQUET_MAX)


def read_header(shard_url: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The validated JSON header of a shard's manifest, or None when the shard has none."""
    json_url, _ = manifest_urls(shard_url)
    data = _read(json_url, storage_options, HEADER_MAX)
    return None if data is None else validate_header(parse_header(data, json_url), json_url)


def read_manifest(shard_url: str, storage_options: dict[str, Any] | None = None) -> ShardManifest | None:
    """A shard's manifest (header now, rows on first use of ``.samples``), or None without one.

    Raises:
        ManifestError: The header is malformed; on reading the rows: the Parquet file is missing,
            malformed or from another write.
    """
    json_url, parquet_url = manifest_urls(shard_url)
    data = _read(json_url, storage_options, HEADER_MAX)
    if data is None:
        return None
    header = parse_header(data, json_url)

    def load() -> Any:
        raw = _read(parquet_url, storage_options, PARQUET_MAX)
        if raw is None:
            raise ManifestError(
                f"{parquet_url} is missing (its header {json_url} exists): rebuild the manifest "
                "(index.build_manifests(name), or write the shards again with manifest=True)"
            )
        return rows_from_parquet(raw, parquet_url, m.num_samples)

    m = ShardManifest.from_header(header, where=json_url, shard_url=shard_url, load_samples=load)
    return m
