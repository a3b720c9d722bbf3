"""Data stores: where shards live, written atomically (see :mod:`atdata_lab.stores.base`).

``from atdata_lab.stores import LocalDiskStore, S3DataStore``. ``S3DataStore`` loads on first use,
so importing this package (and ``atdata_lab``) needs no s3fs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import DataStore, ShardSink
from .local import LocalDiskStore

if TYPE_CHECKING:
    from .s3 import S3DataStore

__all__ = ["DataStore", "LocalDiskStore", "S3DataStore", "ShardSink"]


def __getattr__(name: str) -> Any:
    # Optional backends load on first use.
    if name == "S3DataStore":
        from .s3 import S3DataStore

        return S3DataStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
