"""Writing a manifest's two files beside a shard on local disk (atdata's ``ManifestWriter``).

Each file is written to a hidden temporary name and renamed into place, the rows before the
header, so a header that can be seen always has its rows. (Shards written with ``manifest=True``
publish their manifests through the store, together with the shard: see
:class:`~atdata_lab.manifest.builder.ManifestSidecars`.)
"""

from __future__ import annotations

import os
from pathlib import Path

from .._journal import temp_name
from .shard_manifest import JSON_SUFFIX, PARQUET_SUFFIX, ShardManifest

__all__ = ["ManifestWriter"]


def _publish(path: Path, data: bytes) -> None:
    tmp = path.with_name(temp_name(path.name))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ManifestWriter:
    """Writes ``{base}.manifest.json`` and ``{base}.manifest.parquet``.

    Args:
        base_path: The shard's path without ``.tar`` (``data/name-000000``).
    """

    def __init__(self, base_path: str | os.PathLike) -> None:
        base = os.fspath(base_path)
        self._base = base[:-4] if base.endswith(".tar") else base

    @property
    def json_path(self) -> Path:
        return Path(self._base + JSON_SUFFIX)

    @property
    def parquet_path(self) -> Path:
        return Path(self._base + PARQUET_SUFFIX)

    def write(self, manifest: ShardManifest) -> tuple[Path, Path]:
        """Write both files (rows first); returns ``(json path, parquet path)``."""
        header, rows = manifest.to_bytes()
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        _publish(self.parquet_path, rows)
        _publish(self.json_path, header)
        return self.json_path, self.parquet_path
