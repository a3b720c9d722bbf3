"""The download cache under ``$ATDATA_HOME/cache``: content-addressed, verified before use.

* ``cache/blobs/<cid>.tar``: PDS blobs. The name is rebuilt from the parsed CID (never the text a
  record holds), and the bytes are checked against the CID's sha256 while they download.
* ``cache/shards/<sha256>.tar``: remote shards of published datasets (``http(s)``, ``s3``), named
  by the sha256 their record gives, and checked against it while they download.

A file appears under its final name only once its bytes match (it is written to a hidden temp file
beside it, then renamed), so a cached file is always a verified one; it is hashed once more the
first time a process uses it. Nothing outside these two folders is ever created, replaced or
deleted, and a cached file that no longer matches is removed (it can only be ours). Temp files of
downloads whose process died are removed by the next download into the folder. The whole cache may
be deleted at any time.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Any

from ._journal import clean_stale_temp_files, temp_name
from .cid import BlobCID
from .errors import ShardError, ShardNotFoundError, StoreError
from .stores.local import atdata_home
from .urls import REMOTE_BLOCK, is_local, local_path, open_url

__all__ = ["blob_path", "fetch_blob", "fetch_shard", "shard_path", "verify_checksums", "verify_file"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# (path, size, mtime_ns) -> sha256 hex of files hashed by this process
_hashed: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def _folder(kind: str) -> Path:
    folder = atdata_home() / "cache" / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"cannot create the cache folder {folder}: {e.strerror or e}; set ATDATA_HOME to a "
            "writable folder"
        ) from None
    return folder


def _inside(folder: Path, name: str) -> Path:
    """``folder/name``, checked to be a direct child of the cache folder (no separators, no links)."""
    path = folder / name
    if path.parent != folder or os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
        raise StoreError(f"refusing the cache file name {name!r}")
    real = folder.resolve()
    if path.resolve().parent != real or path.is_symlink():
        raise StoreError(f"refusing {path}: it resolves outside the cache folder {real}")
    return path


def blob_path(cid: BlobCID) -> Path:
    """Where the blob ``cid`` is cached (its canonical CID text, not the record's)."""
    if not isinstance(cid, BlobCID):
        raise StoreError(f"blob_path takes a parsed BlobCID, not {type(cid).__name__}")
    return _inside(_folder("blobs"), f"{cid}.tar")


def shard_path(sha256: str) -> Path:
    """Where a remote shard whose bytes hash to ``sha256`` is cached."""
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise ShardError(f"{sha256!r:.80} is not a sha256 hex digest (64 lowercase hex characters)")
    return _inside(_folder("shards"), f"{sha256}.tar")


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | os.PathLike[str], sha256: str) -> bool:
    """True when the local file hashes to ``sha256`` (hashed once per process while it is unchanged);
    False when it does not exist or differs."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return False
    key = (p, st.st_size, st.st_mtime_ns)
    with _lock:
        known = _hashed.get(key)
    if known is None:
        known = _sha256_file(p)
        with _lock:
            _hashed[key] = known
    return known == sha256


def _drop_if_wrong(path: Path, sha256: str) -> bool:
    """A cached file is used only if it still matches; one that does not is removed (it is ours)."""
    if verify_file(path, sha256):
        return True
    if path.exists():
        path.unlink(missing_ok=True)
    return False


def fetch_blob(atm: Any, did: str, cid: BlobCID, *, trust: Any = None, max_bytes: int | None = None) -> Path:
    """The cached, verified copy of blob ``cid`` of ``did`` (downloaded when missing)."""
    path = blob_path(cid)
    if _drop_if_wrong(path, cid.digest.hex()):
        return path
    clean_stale_temp_files(path.parent)
    atm.download_blob(
        did, str(cid), path, max_bytes=max_bytes, trust=trust
    )  # checked against the CID before the rename
    verify_file(path, cid.digest.hex())
    return path


def fetch_shard(
    url: str, sha256: str, storage_options: dict[str, Any] | None = None, *, max_bytes: int | None = None
) -> Path:
    """A local, verified copy of the shard at ``url`` whose published sha256 is ``sha256``.

    The shard is streamed (one block in memory at a time) into a temp file in the cache, hashed on
    the way, and renamed into place only if the digest matches; otherwise nothing is kept and
    :class:`ShardError` names the shard (no sample of it was read).
    """
    path = shard_path(sha256)
    if _drop_if_wrong(path, sha256):
        return path
    folder = path.parent
    clean_stale_temp_files(folder)
    tmp = folder / temp_name(path.name)
    h = hashlib.sha256()
    size = 0
    try:
        try:
            out = open(tmp, "xb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise StoreError(
                f"cannot write {tmp}: {e.strerror or e}; free space or set ATDATA_HOME"
            ) from None
        with out, open_url(url, storage_options) as src:
            while block := src.read(REMOTE_BLOCK):
                size += len(block)
                if max_bytes is not None and size > max_bytes:
                    raise ShardError(
                        f"shard {url} is larger than the {max_bytes:,} bytes its record declares"
                    )
                h.update(block)
                try:
                    out.write(block)
                except OSError as e:
                    raise StoreError(
                        f"cannot cache the shard {url} in {folder}: {e.strerror or e}; free space "
                        "or set ATDATA_HOME to a folder with room"
                    ) from None
        got = h.hexdigest()
        if got != sha256:
            raise ShardError(
                f"shard {url} does not match its published sha256 checksum ({got} != {sha256}): none "
                "of its samples was used; the file changed or is corrupt, ask the publisher to "
                "re-upload it"
            )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    verify_file(path, sha256)
    return path


def verified_source(url: str, sha256: str, storage_options: dict[str, Any] | None = None) -> str:
    """Where to read a shard that must match ``sha256`` before any of its samples is used: a local
    file once it hashes right, a remote one as its verified copy in the cache."""
    if is_local(url):
        p = local_path(url)
        if not os.path.exists(p):
            raise ShardNotFoundError(f"shard {url} does not exist")
        if not verify_file(p, sha256):
            raise ShardError(
                f"shard {url} does not match its published sha256 checksum: none of its samples was "
                "used; the file changed since it was published"
            )
        return p
    return str(fetch_shard(url, sha256, storage_options))


def verify_checksums(entry: Any, *, storage_options: dict[str, Any] | None = None) -> dict[str, str]:
    """Check each shard of an index entry against its recorded sha256 (atdata's name).

    ``{shard url: "ok" | "mismatch" | "skipped" | "error:<message>"}``: "skipped" for a shard with
    no recorded checksum. A local shard is hashed; a remote one is downloaded into the verified
    cache (unlike atdata, which skips remote shards).
    """
    recorded = list(getattr(entry, "shard_checksums", None) or [])
    out: dict[str, str] = {}
    for i, url in enumerate(entry.data_urls):
        want = recorded[i] if i < len(recorded) else None
        if not want:
            out[url] = "skipped"
            continue
        try:
            if is_local(url):
                p = local_path(url)
                if not os.path.exists(p):
                    out[url] = f"error:shard {url} does not exist"
                    continue
                out[url] = "ok" if verify_file(p, want) else "mismatch"
            else:
                fetch_shard(url, want, storage_options)
                out[url] = "ok"
        except ShardNotFoundError as e:
            out[url] = f"error:{e}"
        except ShardError:
            out[url] = "mismatch"
        except (OSError, StoreError) as e:
            out[url] = f"error:{e}"
    return out
