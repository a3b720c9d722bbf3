"""Queries over manifests: which samples match, answered from the manifests alone.

:class:`QueryExecutor` holds the manifests of many shards and answers ``query(where=...)`` with
the :class:`SampleLocation` of every matching sample, shard by shard, in file order. ``where``
is atdata's ``lambda df: <boolean mask>`` over a shard's rows, or a
:class:`~atdata_lab.manifest.predicates.Predicate` (``F.label == "dog"``), which first skips the
shards whose header statistics rule it out, so their rows are never read.

A location names the shard (its id), the sample key and where its tar member starts; ours also
carry the shard's URL and where the sample's bytes are (``Dataset.select(locations)`` reads each
hit with one ranged request).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, InvalidTypeError, ManifestNotFoundError
from ..urls import is_local
from . import _deps
from .predicates import Predicate
from .shard_manifest import (
    DATA_OFFSET,
    JSON_SUFFIX,
    KEY,
    OFFSET,
    PARQUET_SUFFIX,
    SIZE,
    ShardManifest,
    read_manifest,
)

__all__ = ["SampleLocation", "QueryExecutor", "load_manifests", "locations_of", "manifests_missing"]

FETCHERS = 8  # manifests read at once from remote stores


@dataclass(frozen=True)
class SampleLocation:
    """Where a sample is: ``shard`` (the shard id: its file name without ``.tar``), ``key`` and
    ``offset`` (where its tar member starts), as atdata has it.

    Locations from our queries also know ``url`` (the shard's URL), ``data_offset`` and ``size``
    (where the sample's msgpack bytes are); these are not part of a location's identity.
    """

    shard: str
    key: str
    offset: int
    url: str | None = field(default=None, compare=False, repr=False)
    data_offset: int | None = field(default=None, compare=False, repr=False)
    size: int | None = field(default=None, compare=False, repr=False)


def _mask_of(where: Callable[[Any], Any], df: Any, shard: str) -> Any:
    """``where(df)`` as a boolean Series aligned with ``df`` (missing values do not match)."""
    mask = where(df)
    dtype = getattr(mask, "dtype", None)
    if dtype is None or len(mask) != len(df):
        raise InvalidTypeError(
            f"where= must return a boolean mask with one value per row (shard {shard}: got "
            f"{type(mask).__name__}); e.g. where=lambda df: df['label'] == 'dog'"
        )
    if getattr(dtype, "kind", None) != "b":
        if str(dtype) != "boolean":
            raise InvalidTypeError(
                f"where= must return a boolean mask (shard {shard}: got values of type {dtype}); "
                "e.g. where=lambda df: df['confidence'] > 0.9"
            )
        mask = mask.fillna(False).astype(bool)
    return mask


def _as_int(v: Any) -> int | None:
    try:
        return None if v is None or v != v else int(v)  # v != v: NaN
    except (TypeError, ValueError):
        return None


_new = object.__new__
_set = object.__setattr__


def _locations(
    shards: list[str],
    keys: list[str],
    offsets: list[int],
    urls: list[str | None],
    data_offsets: list[int | None],
    sizes: list[int | None],
) -> list[SampleLocation]:
    """Many locations at once: each the object ``SampleLocation(shard, key, offset, url=...,
    data_offset=..., size=...)`` is, made without the frozen dataclass's per-field ``__init__``
    (a query may return tens of thousands)."""
    out: list[SampleLocation] = []
    append = out.append
    for shard, key, offset, url, data, size in zip(shards, keys, offsets, urls, data_offsets, sizes):
        loc = _new(SampleLocation)
        _set(
            loc,
            "__dict__",
            {"shard": shard, "key": key, "offset": offset, "url": url, "data_offset": data, "size": size},
        )
        append(loc)
    return out


def _where_and_sizes(data: Any, sizes: Any, n: int) -> tuple[list[int | None], list[int | None]]:
    """Where each hit's bytes start and how many there are (both None where unknown), from the
    ``__data_offset__`` (None: no such column) and ``__size__`` values of the hits."""
    if data is None:
        return [None] * n, [None] * n
    if getattr(data, "dtype", None) == np.int64 and getattr(sizes, "dtype", None) == np.int64:
        return data.tolist(), sizes.tolist()
    where = [_as_int(d) for d in data.tolist()]
    return where, [_as_int(s) if w is not None else None for w, s in zip(where, sizes.tolist())]


def locations_of(manifest: ShardManifest, rows: Any) -> list[SampleLocation]:
    """The locations of some of a manifest's rows (a slice of its DataFrame)."""
    if rows.empty:
        return []
    n = len(rows)
    keys = list(map(str, rows[KEY].tolist()))
    offsets = list(map(int, rows[OFFSET].tolist()))
    data = rows[DATA_OFFSET].to_numpy() if DATA_OFFSET in rows.columns else None
    where, sizes = _where_and_sizes(data, rows[SIZE].to_numpy(), n)
    return _locations([manifest.shard_id] * n, keys, offsets, [manifest.shard_url] * n, where, sizes)


def manifests_missing(absent: list[str], total: int) -> ManifestNotFoundError:
    """The error for shards without a manifest: names them, and how to make manifests."""
    shown = ", ".join(absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3 else "")
    return ManifestNotFoundError(
        f"{len(absent)} of {total} shard(s) have no manifest ({shown}): write them with manifest=True, "
        "or build the manifests of an index entry with index.build_manifests(name)"
    )


class _Joined:
    """The rows of several shards whose DataFrames have the same columns and dtypes, seen as one
    (for a predicate, which compares value by value, so evaluating it over the joined rows gives
    each shard's mask, end to end). Columns are joined on first use and kept."""

    __slots__ = ("frames", "starts", "columns", "_cols")

    def __init__(self, frames: list[Any]) -> None:
        self.frames = frames
        self.starts = np.cumsum([0] + [len(df) for df in frames])
        self.columns = frames[0].columns
        self._cols: dict[str, Any] = {}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, name: str) -> Any:
        col = self._cols.get(name)
        if col is None:
            pd = _deps.pandas()
            parts = [df[name] for df in self.frames]
            if isinstance(parts[0].dtype, np.dtype):  # numbers, booleans: one numpy array (same dtype)
                col = pd.Series(np.concatenate([p.to_numpy() for p in parts]), name=name, copy=False)
            else:
                col = pd.concat(parts, ignore_index=True)
            self._cols[name] = col
        return col

    def locations(self, hits: Any, manifests: list[ShardManifest]) -> list[SampleLocation]:
        """The locations of the joined rows ``hits`` (ascending), ``manifests`` being the shards'."""
        n = len(hits)
        if not n:
            return []
        shard = np.searchsorted(self.starts, hits, side="right") - 1
        ids = np.array([m.shard_id for m in manifests], dtype=object)[shard].tolist()
        urls = np.array([m.shard_url for m in manifests], dtype=object)[shard].tolist()
        keys = list(map(str, self[KEY].iloc[hits].tolist()))
        offsets = self[OFFSET].to_numpy()[hits].tolist()
        if self[OFFSET].dtype != np.int64:
            offsets = list(map(int, offsets))
        data = self[DATA_OFFSET].to_numpy()[hits] if DATA_OFFSET in self.columns else None
        where, sizes = _where_and_sizes(data, self[SIZE].to_numpy()[hits], n)
        return _locations(ids, keys, offsets, urls, where, sizes)


def _joinable(dtypes: Any, columns: Any, fields: set[str]) -> bool:
    """Whether a predicate over ``fields`` may be evaluated over joined shards with these columns:
    every field is there, with numbers, booleans or text (a comparison of these never depends on
    the other values of the column, nor raises for some values only)."""
    pd = _deps.pandas()
    kinds = dict(zip(columns, dtypes))
    for name in fields:
        dtype = kinds.get(name)
        if dtype is None:
            return False
        if not (getattr(dtype, "kind", "O") in "biuf" or isinstance(dtype, pd.StringDtype)):
            return False
    return True


class QueryExecutor:
    """Answers queries over the manifests of many shards.

    A predicate (``F.label == "dog"``) is evaluated over the rows of all the shards it may match at
    once (shards whose columns agree are joined, once, and kept with the executor: keep the
    executor to query again); a lambda, shard by shard (it gets one shard's rows, as in atdata).

    Args:
        manifests: The shards' :class:`~atdata_lab.manifest.ShardManifest` s.
    """

    JOINED_KEPT = 4  # joined row sets kept (for the shards different predicates may match)

    def __init__(self, manifests: Iterable[ShardManifest]) -> None:
        self._manifests: list[ShardManifest] = list(manifests)
        self._joined: dict[tuple[int, ...], _Joined] = {}
        self._kinds: dict[int, tuple[Any, tuple[Any, ...]]] = {}  # position -> (rows, columns and dtypes)

    @property
    def manifests(self) -> list[ShardManifest]:
        return list(self._manifests)

    def __repr__(self) -> str:
        n = sum(m.num_samples for m in self._manifests)
        return f"QueryExecutor({len(self._manifests)} shards, {n} samples)"

    def query(self, where: Callable[[Any], Any] | Predicate) -> list[SampleLocation]:
        """The locations of the samples for which ``where`` holds, shard by shard in file order.

        ``where`` gets one shard's rows (a DataFrame with ``__key__``, ``__offset__``,
        ``__size__`` and the manifest fields) and returns a boolean mask, or is a ``Predicate``.

        Raises:
            InvalidTypeError: ``where`` is not callable or does not return a boolean mask.
            ManifestError: A shard's rows are missing or do not match its header.
        """
        if not callable(where):
            raise InvalidTypeError(
                f"where= must be a function of a DataFrame or a predicate like F.label == 'dog', "
                f"not {type(where).__name__}"
            )
        todo = list(range(len(self._manifests)))
        if isinstance(where, Predicate):
            todo = [i for i in todo if where.may_match(self._manifests[i].aggregates)]
        _prefetch([self._manifests[i] for i in todo])
        if isinstance(where, Predicate):
            try:
                return self._query_joined(where, todo)
            except Exception:  # noqa: BLE001 - raised again below, as shard-by-shard evaluation raises it
                pass
        return self._query_each(where, todo)

    def _query_each(self, where: Callable[[Any], Any], todo: list[int]) -> list[SampleLocation]:
        out: list[SampleLocation] = []
        for i in todo:
            m = self._manifests[i]
            df = m.samples
            if df.empty:
                continue
            out += locations_of(m, df[_mask_of(where, df, m.shard_id)])
        return out

    def _kind_of(self, i: int) -> tuple[Any, tuple[Any, ...]]:
        """Shard ``i``'s rows, and its columns and dtypes (kept while its rows stay the same)."""
        df = self._manifests[i].samples
        got = self._kinds.get(i)
        if got is None or got[0] is not df:
            got = self._kinds[i] = (df, (tuple(df.columns), tuple(df.dtypes)))
        return got

    def _query_joined(self, where: Predicate, todo: list[int]) -> list[SampleLocation]:
        """``where`` over the rows of the shards in ``todo``: those whose columns agree are joined
        (and the join kept); shards left alone are evaluated one by one."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i in todo:
            df, kind = self._kind_of(i)
            if not df.empty:
                groups.setdefault(kind, []).append(i)
        fields = where._field_names()
        found: dict[int, list[SampleLocation]] = {}
        for (columns, dtypes), members in groups.items():
            if len(members) == 1 or not _joinable(dtypes, columns, fields):
                for i in members:
                    found[i] = self._query_each(where, [i])
                continue
            joined = self._join(members)
            mask = _mask_of(where, joined, self._manifests[members[0]].shard_id)
            hits = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
            locations = joined.locations(hits, [self._manifests[i] for i in members])
            cuts = np.searchsorted(hits, joined.starts).tolist()  # each member's hits, in order
            for k, i in enumerate(members):
                found[i] = locations[cuts[k] : cuts[k + 1]]
        out: list[SampleLocation] = []
        for i in todo:
            out += found.get(i, ())
        return out

    def _join(self, members: list[int]) -> _Joined:
        """The joined rows of these shards (kept, for the last few sets of shards joined)."""
        key = tuple(members)
        frames = [self._manifests[i].samples for i in members]
        joined = self._joined.pop(key, None)
        if joined is None or any(a is not b for a, b in zip(joined.frames, frames)):
            joined = _Joined(frames)
        self._joined[key] = joined  # most recently used last
        while len(self._joined) > self.JOINED_KEPT:
            del self._joined[next(iter(self._joined))]
        return joined

    @classmethod
    def from_directory(cls, directory: str | os.PathLike) -> QueryExecutor:
        """The manifests of every ``*.manifest.json`` in a folder (a header without its Parquet
        file contributes no rows, as in atdata).

        Raises:
            ManifestNotFoundError: The folder does not exist (a ``FileNotFoundError``).
        """
        folder = Path(directory)
        if not folder.is_dir():
            raise ManifestNotFoundError(f"{folder} is not a folder: no manifests to load")
        out = []
        for jp in sorted(folder.glob("*" + JSON_SUFFIX)):
            base = str(jp)[: -len(JSON_SUFFIX)]
            pp = Path(base + PARQUET_SUFFIX)
            m = ShardManifest.from_files(jp, pp) if pp.exists() else ShardManifest.from_json_only(jp)
            if Path(base + ".tar").exists():
                m.shard_url = base + ".tar"
            out.append(m)
        return cls(out)

    @classmethod
    def from_shards(
        cls, shard_urls: Iterable[str], storage_options: dict[str, Any] | None = None
    ) -> QueryExecutor:
        """The manifests beside the given shards (local paths or any URL a dataset reads), read
        with the same options (credentials, trust policy) as the shards.

        Raises:
            ManifestNotFoundError: A shard has no manifest (the message names the fix).
        """
        return cls(load_manifests(list(shard_urls), storage_options))

    @classmethod
    def from_shard_urls(cls, shard_urls: Iterable[str]) -> QueryExecutor:
        """atdata's loader: the manifests beside those shards that have one (others are left out)."""
        found = load_manifests(list(shard_urls), None, missing="skip")
        return cls(m for m in found if m is not None)


def _prefetch(manifests: list[ShardManifest]) -> None:
    """Read the rows of remote manifests concurrently (local ones are read when used)."""
    pending = [
        m
        for m in manifests
        if m._load is not None and (m.content_addressed or (m.shard_url and not is_local(m.shard_url)))
    ]
    if len(pending) > 1:
        with ThreadPoolExecutor(min(FETCHERS, len(pending)), thread_name_prefix="atdata-manifest") as pool:
            list(pool.map(lambda m: m.samples, pending))


def load_manifests(
    shard_urls: list[str], storage_options: dict[str, Any] | None = None, *, missing: str = "error"
) -> list[Any]:
    """The manifest of each shard, in order (headers now, rows on first use).

    ``missing="error"`` raises :class:`ManifestNotFoundError` naming the shards without one;
    ``"skip"`` leaves them out; ``"none"`` puts ``None`` in their place.
    """
    if missing not in ("error", "skip", "none"):
        raise InvalidArgumentError(f"missing must be 'error', 'skip' or 'none', not {missing!r}")

    def one(url: str) -> ShardManifest | None:
        return read_manifest(url, storage_options)

    remote = [u for u in shard_urls if not is_local(u)]
    if len(remote) > 1:
        with ThreadPoolExecutor(min(FETCHERS, len(shard_urls)), thread_name_prefix="atdata-manifest") as pool:
            found = list(pool.map(one, shard_urls))
    else:
        found = [one(u) for u in shard_urls]
    absent = [u for u, m in zip(shard_urls, found) if m is None]
    if absent and missing == "error":
        raise manifests_missing(absent, len(shard_urls))
    if missing == "skip":
        return [m for m in found if m is not None]
    return found
