"""``LocalDiskStore``: shards under a folder on local disk, published by an atomic hard link that
never replaces an existing file."""

from __future__ import annotations

import errno
import filecmp
import os
import re
from pathlib import Path
from typing import BinaryIO

from .._journal import TEMP_MARK, clean_stale_temp_files, temp_name
from ..errors import InvalidArgumentError, ShardExistsError, StoreError
from .base import DataStore, ShardSink

# TEMP_MARK, clean_stale_temp_files and temp_name live in atdata_lab._journal (re-exported here)
__all__ = ["LocalDiskStore", "FileSink", "TEMP_MARK", "atdata_home", "clean_stale_temp_files", "temp_name"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")


def atdata_home() -> Path:
    """``$ATDATA_HOME``, or ``~/.atdata``."""
    env = os.environ.get("ATDATA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".atdata"


def is_safe_dataset_name(name: str) -> bool:
    """True when ``name`` can name a dataset folder and its shard files."""
    return isinstance(name, str) and bool(_SAFE_NAME.match(name))


def check_dataset_name(name: str) -> str:
    if not is_safe_dataset_name(name):
        raise InvalidArgumentError(
            f"dataset name {name!r} is invalid: use letters, digits, '.', '_' and '-' (at most 200), "
            "starting with a letter or digit, e.g. 'experiment-2024-001'"
        )
    return name


# errno values of file systems that have no hard links (some FUSE and network mounts)
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class FileSink(ShardSink):
    """Writes to a hidden temp file beside the target; ``commit`` fsyncs and publishes it with
    ``os.link(tmp, final)``, which fails when ``final`` exists, so two writers (two indexes sharing
    the folder) never replace each other's shards: an identical file is reused, a different one
    raises :class:`ShardExistsError`. On file systems without hard links the commit checks, then
    renames (two writers racing on one name within that instant can still collide there).

    ``replace=True`` publishes with ``os.replace`` instead: for a path the user named themselves
    (``write_samples(samples, "out/data.tar")``), never for a store's shards.
    """

    def __init__(self, path: str | os.PathLike, *, replace: bool = False) -> None:
        self.replace = replace
        self.path = Path(path)
        self.url = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(temp_name(self.path.name))
        self._f = open(self.tmp, "wb")
        self._synced = False

    def write(self, data: bytes | memoryview) -> None:
        self._f.write(data)
        self._synced = False

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._synced = True

    def commit(self) -> bool:
        if not self._synced:
            self.sync()
        self._f.close()
        try:
            if self.replace:
                os.replace(self.tmp, self.path)
                return True
            try:
                os.link(self.tmp, self.path)
            except FileExistsError:
                self._check_same()
                return False
            except OSError as e:
                if e.errno not in _NO_LINKS:
                    raise
                if self.path.exists():
                    self._check_same()
                    return False
                os.rename(self.tmp, self.path)
            return True
        except OSError as e:
            if isinstance(e, ShardExistsError):
                raise
            raise StoreError(
                f"cannot publish {self.path}: {e.strerror or e}; check the folder's permissions and "
                "free space"
            ) from e
        finally:
            self.tmp.unlink(missing_ok=True)

    def _check_same(self) -> None:
        """The final name is taken: fine when it holds exactly our bytes, else refuse."""
        if not filecmp.cmp(self.tmp, self.path, shallow=False):
            raise ShardExistsError(
                f"{self.path} already exists with different content; a store never replaces a shard (an entry "
                "or a published record may use it): write under another name or tag "
                "(store.shard_url(name, i, tag=...))",
                url=self.url,
            )

    def abort(self) -> None:
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class LocalDiskStore(DataStore):
    """Shards on local disk: ``{root}/{name}/{name}-%06d.tar``.

    Args:
        root: The folder (default ``$ATDATA_HOME/data``, i.e. ``~/.atdata/data``).
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = (
            Path(root).expanduser().resolve() if root is not None else (atdata_home() / "data").resolve()
        )

    def __repr__(self) -> str:
        return f"LocalDiskStore({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalDiskStore) and other.root == self.root

    def __hash__(self) -> int:
        return hash(("LocalDiskStore", self.root))

    def shard_url(self, dataset: str, index: int, *, tag: str | None = None) -> str:
        check_dataset_name(dataset)
        stem = f"{dataset}-{tag}" if tag else dataset
        return str(self.root / dataset / f"{stem}-{index:06d}.tar")

    def open_sink(self, url: str) -> FileSink:
        try:
            folder = Path(url).parent
            folder.mkdir(parents=True, exist_ok=True)
            clean_stale_temp_files(folder)
            return FileSink(url)
        except OSError as e:
            raise StoreError(
                f"{self}: cannot write {url}: {e.strerror or e}; check the folder's permissions and free space"
            ) from e

    def clean_stale(self) -> int:
        """Remove the staging files of dead writers (this machine) in every dataset folder of the store."""
        return clean_stale_temp_files(self.root, depth=1)

    def exists(self, url: str) -> bool:
        return Path(url).is_file()

    def size(self, url: str) -> int:
        return Path(url).stat().st_size

    def delete(self, url: str) -> None:
        Path(url).unlink(missing_ok=True)
        folder = Path(url).parent
        try:
            if folder != self.root and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        except OSError:
            pass

    def open_read(self, url: str) -> BinaryIO:
        return open(url, "rb")

    def owns(self, url: str) -> bool:
        if "://" in url and not url.startswith("file://"):
            return False  # s3://, https://...: never a local file
        try:
            return Path(url.removeprefix("file://")).resolve().is_relative_to(self.root)
        except (OSError, ValueError):
            return False

    def describe(self) -> str:
        return f"local disk at {self.root}"
