"""The data store interface: where shards live, written atomically.

A store names shard URLs, opens :class:`ShardSink` objects to write them, and reads them
back. A sink stages bytes out of sight (a temp file, an open multipart upload) and only
:meth:`ShardSink.commit` makes the shard appear under its final URL, so no reader ever sees
half a shard. A commit never replaces a different file already at the URL (an entry or a
published record may use it): it reuses an identical one and raises :class:`ShardExistsError`
otherwise. Backends opt into ``tests/conformance/`` to prove they behave alike.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from typing import Any, BinaryIO, Protocol, runtime_checkable

__all__ = ["AbstractDataStore", "DataStore", "ShardSink", "ShardWriteResult"]


@runtime_checkable
class AbstractDataStore(Protocol):
    """atdata 0.7's data store protocol: what code written for any atdata store calls.

    Every :class:`DataStore` here implements it; an index needs a :class:`DataStore` (which
    also writes shards atomically, never over another file).
    """

    def write_shards(self, ds: Any, *, prefix: str, **kwargs: Any) -> list[str]: ...

    def read_url(self, url: str) -> str: ...

    def supports_streaming(self) -> bool: ...


class ShardWriteResult(list):
    """Shard URLs (a ``list[str]``) that also carry ``checksums``: ``{url: sha256 hex}``."""

    checksums: dict[str, str]

    def __init__(self, urls: list[str], checksums: dict[str, str]) -> None:
        super().__init__(urls)
        self.checksums = dict(checksums)


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

    def sync(self) -> None:  # noqa: B027 - optional: most sinks have nothing to do before commit
        """Make the bytes written so far durable, before :meth:`commit` publishes them (optional:
        ``commit`` does it anyway; a writer publishing several files together syncs them at once,
        so they share one wait for the disk)."""


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

    # -------------------------------------------------------------- atdata's AbstractDataStore
    def write_shards(
        self,
        ds: Any,
        *,
        prefix: str,
        maxcount: int | None = None,
        maxsize: int | None = None,
        progress: Any = False,
    ) -> ShardWriteResult:
        """Write a dataset's samples (or any iterable of samples) into this store as new shards.

        ``prefix`` names them (``"mnist"``; atdata's path form ``"datasets/mnist/v1"`` becomes
        ``"datasets-mnist-v1"``). Shards appear only when all are written; files already under
        that name are never replaced (the new ones get a fresh tag). Returns their URLs, with
        ``.checksums``. Unlike atdata's, ``maxcount``/``maxsize`` hold for every shard.
        """
        from ..errors import InvalidArgumentError
        from ..sample import codec_for
        from ..shards import ShardSetWriter, encode_samples_into, peek_samples
        from .local import check_dataset_name

        name = check_dataset_name(str(prefix).strip("/").replace("/", "-"))
        if ds is None:
            raise InvalidArgumentError("write_shards needs a Dataset (or samples) to write")
        first, every, total = peek_samples(ds, f"write_shards(prefix={prefix!r})")
        tag = uuid.uuid4().hex[:8] if self.exists(self.shard_url(name, 0)) else None
        writer = ShardSetWriter(
            lambda i: self.shard_url(name, i, tag=tag), self.open_sink, maxcount=maxcount, maxsize=maxsize
        )
        try:
            encode_samples_into(writer, every, codec_for(type(first)), progress=progress, total=total)
            infos = writer.finish()
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return ShardWriteResult([i.url for i in infos], {i.url: i.checksum for i in infos})

    def read_url(self, url: str) -> str:
        """The URL to read a shard from: the URL itself (readers get :attr:`storage_options`)."""
        return url

    def supports_streaming(self) -> bool:
        """Shards are read as streams (and by ranges): True."""
        return True

    def clean_stale(self) -> int:
        """Remove what writers on this machine that died left staged in this store (temp files,
        unfinished uploads), whatever dataset they were writing. Returns how many were removed."""
        return 0

    def describe(self) -> str:
        return repr(self)
