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

from ..errors import InvalidArgumentError, InvalidTypeError, ManifestNotFoundError
from ..urls import is_local
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


def locations_of(manifest: ShardManifest, rows: Any) -> list[SampleLocation]:
    """The locations of some of a manifest's rows (a slice of its DataFrame)."""
    if rows.empty:
        return []
    keys = rows[KEY].tolist()
    offsets = rows[OFFSET].tolist()
    sizes = rows[SIZE].tolist()
    data = rows[DATA_OFFSET].tolist() if DATA_OFFSET in rows.columns else [None] * len(keys)
    out = []
    for k, off, size, d in zip(keys, offsets, sizes, data):
        where = _as_int(d)
        out.append(
            SampleLocation(
                manifest.shard_id,
                str(k),
                int(off),
                url=manifest.shard_url,
                data_offset=where,
                size=_as_int(size) if where is not None else None,
            )
        )
    return out


def manifests_missing(absent: list[str], total: int) -> ManifestNotFoundError:
    """The error for shards without a manifest: names them, and how to make manifests."""
    shown = ", ".join(absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3 else "")
    return ManifestNotFoundError(
        f"{len(absent)} of {total} shard(s) have no manifest ({shown}): write them with manifest=True, "
        "or build the manifests of an index entry with index.build_manifests(name)"
    )


class QueryExecutor:
    """Answers queries over the manifests of many shards.

    Args:
        manifests: The shards' :class:`~atdata_lab.manifest.ShardManifest` s.
    """

    def __init__(self, manifests: Iterable[ShardManifest]) -> None:
        self._manifests: list[ShardManifest] = list(manifests)

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
        todo = self._manifests
        if isinstance(where, Predicate):
            todo = [m for m in todo if where.may_match(m.aggregates)]
        _prefetch(todo)
        out: list[SampleLocation] = []
        for m in todo:
            df = m.samples
            if df.empty:
                continue
            out += locations_of(m, df[_mask_of(where, df, m.shard_id)])
        return out

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
