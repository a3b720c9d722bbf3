"""The data store interface: where shards live, written atomically.

A store names shard URLs, opens :class:`ShardSink` objects to write them, and reads them
back. A sink stages bytes out of sight (a temp file, an open multipart upload) and only
:meth:`ShardSink.commit` makes the shard appear under its final URL, so no reader ever sees
half a shard. A commit never replaces a different file already at the URL (an entry or a
published record may use it): it reuses an identical one and raises :class:`ShardExistsError`
otherwise. Backends opt into ``tests/conformance/`` to prove they behave alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, BinaryIO

__all__ = ["DataStore", "ShardSink"]


class ShardSink(ABC):
    """A shard being written. Write bytes, then ``commit()`` (atomic publish) or ``abort()``."""

    url: str

    @abstractmethod
    def write(self, data: bytes | memoryview) -> None: ...

    @abstractmethod
    def commit(self) -> bool:
        """Make the shard visible at ``url``, atomically, never replacing another file.

        Returns True when this sink created the file. When ``url`` already holds a file with exactly
        these bytes, that file is kept, the staged copy dropped, and False returned. When it holds
        different bytes, nothing changes and :class:`~atdata_lab.errors.ShardExistsError` is raised
        (the staged bytes are dropped too).
        """

    @abstractmethod
    def abort(self) -> None:
        """Throw the staged bytes away; nothing appears at ``url``."""


class DataStore(ABC):
    """Where shards are kept: ``LocalDiskStore``, ``S3DataStore``, ..."""

    @abstractmethod
    def shard_url(self, dataset: str, index: int, *, tag: str | None = None) -> str:
        """The URL of shard ``index`` of dataset ``dataset`` (``tag`` names a second generation of
        its files, so an overwrite never writes over files an entry may still use)."""

    @abstractmethod
    def open_sink(self, url: str) -> ShardSink:
        """Start writing a shard at ``url`` (invisible until committed)."""

    @abstractmethod
    def exists(self, url: str) -> bool: ...

    @abstractmethod
    def size(self, url: str) -> int: ...

    @abstractmethod
    def delete(self, url: str) -> None:
        """Remove a shard; a missing one is not an error."""

    @abstractmethod
    def open_read(self, url: str) -> BinaryIO: ...

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec options (credentials, endpoint) readers need for this store's URLs."""
        return {}

    def owns(self, url: str) -> bool:
        """True when ``url`` is inside this store."""
        return False

    def clean_stale(self) -> int:
        """Remove what writers on this machine that died left staged in this store (temp files,
        unfinished uploads), whatever dataset they were writing. Returns how many were removed."""
        return 0

    def describe(self) -> str:
        return repr(self)
