"""``load_dataset``: one call for local files, indexed names and published datasets."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any, overload

from .dataset import Dataset, DatasetDict
from .errors import DataNotFoundError, InvalidTypeError
from .index import get_default_index
from .promotion import load_published
from .urls import expand_urls, is_local, local_path

__all__ = ["load_dataset", "split_of"]

_SPLITS = (
    ("train", re.compile(r"(?:^|[^a-z])(train|training)(?:[^a-z]|$)")),
    ("test", re.compile(r"(?:^|[^a-z])(test|testing)(?:[^a-z]|$)")),
    ("validation", re.compile(r"(?:^|[^a-z])(validation|valid|val|dev)(?:[^a-z]|$)")),
)


def split_of(url: str) -> str | None:
    """The split a file name names (``train``, ``test``, ``validation``), as HF and atdata detect it."""
    parts = url.replace("\\", "/").lower().split("/")
    for part in reversed(parts):  # the file name first, then its folders
        for split, rx in _SPLITS:
            if rx.search(part):
                return split
    return None


def _glob_root(pattern: str) -> str:
    """The folder part of a pattern before its first wildcard."""
    head = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def _resolve_files(path: str) -> tuple[str, list[str]]:
    """``(root, files)``: splits are read from each file's path below ``root``."""
    if is_local(path):
        p = local_path(path)
        if os.path.isdir(p):
            files = sorted(str(f) for f in Path(p).rglob("*.tar"))
            if not files:
                raise DataNotFoundError(f"no .tar shards in folder {p}")
            return p, files
        if any(ch in p for ch in "*?["):
            files = sorted(glob.glob(p, recursive=True))
            if not files:
                raise DataNotFoundError(f"no files match {p}")
            return _glob_root(p), files
        files = expand_urls(p)
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise DataNotFoundError(
                f"shard not found: {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return _glob_root(p), files
    if any(ch in path for ch in "*?["):
        import fsspec

        fs, _ = fsspec.core.url_to_fs(path)
        proto = path.split("://", 1)[0]
        return _glob_root(path), sorted(f"{proto}://{f}" for f in fs.glob(path))
    return _glob_root(path), expand_urls(path)


def _below(root: str, f: str) -> str:
    return f[len(root) :].lstrip("/") if root and f.startswith(root) else f.rsplit("/", 1)[-1]


def _pick(dd: DatasetDict, split: str | None) -> Dataset | DatasetDict:
    return dd if split is None else dd[split]


@overload
def load_dataset(
    path: str | os.PathLike,
    sample_type: type | None = None,
    *,
    split: str,
    data_files: str | list[str] | dict[str, str | list[str]] | None = None,
    streaming: bool = False,
    index: Any = None,
    atmosphere: Any = None,
    storage_options: dict[str, Any] | None = None,
    trust: Any = None,
) -> Dataset: ...


@overload
def load_dataset(
    path: str | os.PathLike,
    sample_type: type | None = None,
    *,
    split: None = None,
    data_files: str | list[str] | dict[str, str | list[str]] | None = None,
    streaming: bool = False,
    index: Any = None,
    atmosphere: Any = None,
    storage_options: dict[str, Any] | None = None,
    trust: Any = None,
) -> Dataset | DatasetDict: ...


def load_dataset(
    path: str | os.PathLike,
    sample_type: type | None = None,
    *,
    split: str | None = None,
    data_files: str | list[str] | dict[str, str | list[str]] | None = None,
    streaming: bool = False,
    index: Any = None,
    atmosphere: Any = None,
    storage_options: dict[str, Any] | None = None,
    trust: Any = None,
) -> Dataset | DatasetDict:
    """Load a dataset by path, pattern, indexed name or published URI.

    Args:
        path: A shard file, folder, glob (``data/*.tar``), brace pattern
            (``data-{000000..000009}.tar``), fsspec URL, ``@local/name`` (an entry in
            ``index``), ``at://...`` (a published dataset record) or ``@handle/name[@version]``.
        sample_type: Decode as this type. Default: the type generated from the indexed or
            published schema, else :class:`~atdata_lab.sample.DictSample`.
        split: ``"train"``, ``"test"``, ``"validation"``... ``None`` returns a
            :class:`DatasetDict` of every split found (files without a split name are "train").
        data_files: The files, instead of finding them under ``path``: a pattern or a list of
            them (the ``"train"`` split), or ``{split: pattern or list}``. Relative patterns are
            taken under a local ``path``.
        streaming: Recorded on the returned :class:`DatasetDict` (``.streaming``), as atdata
            does; every read streams either way.
        index: The :class:`~atdata_lab.index.Index` for ``@local/`` names (default: :func:`~atdata_lab.index.get_default_index`).
        storage_options: fsspec options for remote URLs.
        trust: For ``at://`` and ``@handle/name``: the trust policy for the locations the
            record names (``None``: the environment's, see :class:`~atdata_lab.urls.TrustPolicy`;
            ``True``: trust this record completely). Records you published are always trusted.
            What is checked, and when: :func:`~atdata_lab.promotion.load_published`.
        atmosphere: The client that reads ``at://`` and ``@handle/name`` records (default: the
            index's, else an anonymous one on ``$ATDATA_PDS_URL``).
    """
    path = os.fspath(path)
    if path.startswith("@local/"):
        idx = index if index is not None else get_default_index()
        name = path[len("@local/") :]
        entry = idx.get_entry_by_name(name)
        ds = idx.dataset(entry, sample_type=sample_type)
        return _pick(DatasetDict({entry.metadata.get("split", "train"): ds}, streaming=streaming), split)
    if path.startswith("at://") or path.startswith("@"):
        ds = load_published(path, sample_type=sample_type, index=index, trust=trust, atmosphere=atmosphere)
        return _pick(DatasetDict({ds._split: ds}, streaming=streaming), split)
    groups: dict[str, list[str]] = {}
    if data_files is not None:
        groups = _data_file_groups(path, data_files)
    else:
        root, files = _resolve_files(path)
        for f in files:  # the split comes from the path below what was given, never from parent folders
            groups.setdefault(split_of(_below(root, f)) or "train", []).append(f)
    dd = DatasetDict(
        {
            s: Dataset(urls, sample_type=sample_type, storage_options=storage_options)
            for s, urls in groups.items()
        },
        sample_type=sample_type,
        streaming=streaming,
    )
    return _pick(dd, split)


def _data_file_groups(path: str, data_files: Any) -> dict[str, list[str]]:
    """``{split: files}`` from ``data_files`` (a pattern, a list of them, or ``{split: ...}``)."""
    if isinstance(data_files, (str, os.PathLike)):
        data_files = {"train": [data_files]}
    elif isinstance(data_files, (list, tuple)):
        data_files = {"train": list(data_files)}
    elif not isinstance(data_files, dict):
        raise InvalidTypeError(
            f"data_files must be a pattern, a list of patterns or {{split: patterns}}, not {type(data_files).__name__}"
        )
    base = local_path(path) if path and is_local(path) else None
    groups: dict[str, list[str]] = {}
    for split_name, patterns in data_files.items():
        if isinstance(patterns, (str, os.PathLike)):
            patterns = [patterns]
        files: list[str] = []
        for pattern in patterns:
            pattern = os.fspath(pattern)
            if base and is_local(pattern) and not os.path.isabs(local_path(pattern)):
                pattern = os.path.join(base, pattern)
            files.extend(_resolve_files(pattern)[1])
        if not files:
            raise DataNotFoundError(f"data_files[{split_name!r}] names no files")
        groups[str(split_name)] = files
    return groups
