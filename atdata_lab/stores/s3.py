"""``S3DataStore``: shards in an S3 bucket (AWS or any S3 server), through fsspec/s3fs.

A shard streams to S3 while it is written: a multipart upload whose memory is bounded by one
part (5 MiB), not one shard. The upload is completed only on ``commit()``, so the object never
appears under its final key half-written; ``abort()`` aborts the multipart upload.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from ..errors import InvalidArgumentError, StoreError
from .base import DataStore, ShardSink
from .local import check_dataset_name

__all__ = ["S3DataStore", "S3Sink"]

PART_SIZE = 5 << 20


def _explain(store: S3DataStore, e: BaseException, what: str) -> StoreError:
    text = str(e)
    if isinstance(e, PermissionError) or "AccessDenied" in text or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        fix = ("the credentials were refused: check key/secret (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) "
               "and the bucket's permissions")
    elif isinstance(e, FileNotFoundError) or "NoSuchBucket" in text:
        fix = f"bucket {store.bucket!r} does not exist: create it first (e.g. s3fs.S3FileSystem(...).mkdir({store.bucket!r}))"
    elif "Could not connect" in text or "Connect" in type(e).__name__ or isinstance(e, ConnectionError):
        fix = f"cannot connect to {store.endpoint_url or 'AWS S3'}: is the S3 server running and the endpoint right?"
    else:
        fix = "see the server's answer above"
    return StoreError(f"{store.describe()}: cannot {what}: {text or type(e).__name__}; {fix}")


class S3Sink(ShardSink):
    """A multipart upload, completed on ``commit`` and aborted on ``abort``."""

    def __init__(self, store: S3DataStore, url: str) -> None:
        self.store = store
        self.url = url
        try:
            self._f = store.fs.open(url[len("s3://") :], "wb", block_size=PART_SIZE)
        except Exception as e:  # s3fs/botocore raise many types
            raise _explain(store, e, f"write {url}") from e

    def write(self, data: bytes | memoryview) -> None:
        try:
            self._f.write(data)
        except Exception as e:
            raise _explain(self.store, e, f"write {self.url}") from e

    def commit(self) -> None:
        try:
            self._f.close()
        except Exception as e:
            raise _explain(self.store, e, f"complete {self.url}") from e
        self.store.fs.invalidate_cache(self.url[len("s3://") :])

    def abort(self) -> None:
        try:
            self._f.discard()  # aborts the multipart upload
        except Exception:  # noqa: BLE001 - aborting must never raise over the original error
            pass
        self._f.closed = True  # so s3fs does not try to flush the discarded buffer when collected


class S3DataStore(DataStore):
    """Shards in S3: ``s3://{bucket}/{prefix}{name}/{name}-%06d.tar``.

    Args:
        bucket: The bucket (it must exist).
        prefix: A key prefix, e.g. ``"datasets/"``.
        endpoint_url: For S3 servers other than AWS (MinIO, SeaweedFS, ...).
        key, secret: Credentials; default: the usual AWS environment variables and config.
        profile: An AWS config profile.
        region: The bucket's region (recorded in published records).
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        profile: str | None = None,
        region: str | None = None,
    ) -> None:
        try:
            import s3fs
        except ImportError:
            raise ImportError("S3DataStore needs s3fs: pip install 'atdata-lab[s3]'") from None
        if not bucket or "/" in bucket:
            raise InvalidArgumentError(f"bucket must be a bucket name without '/', not {bucket!r}")
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
        opts: dict[str, Any] = {}
        if key is not None or secret is not None:
            opts["key"], opts["secret"] = key, secret
        if profile is not None:
            opts["profile"] = profile
        if self.endpoint_url:
            opts["client_kwargs"] = {"endpoint_url": self.endpoint_url}
        self._options = opts
        self.fs = s3fs.S3FileSystem(**opts)

    def __repr__(self) -> str:  # never shows the secret
        return f"S3DataStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def storage_options(self) -> dict[str, Any]:
        return dict(self._options)

    def shard_url(self, dataset: str, index: int, *, tag: str | None = None) -> str:
        check_dataset_name(dataset)
        stem = f"{dataset}-{tag}" if tag else dataset
        return f"s3://{self.bucket}/{self.prefix}{dataset}/{stem}-{index:06d}.tar"

    def open_sink(self, url: str) -> S3Sink:
        return S3Sink(self, url)

    def _path(self, url: str) -> str:
        return url[len("s3://") :] if url.startswith("s3://") else url

    def exists(self, url: str) -> bool:
        try:
            self.fs.info(self._path(url), refresh=True)
            return True
        except FileNotFoundError:
            return False
        except Exception as e:
            raise _explain(self, e, f"look up {url}") from e

    def size(self, url: str) -> int:
        try:
            return int(self.fs.info(self._path(url), refresh=True)["size"])
        except Exception as e:
            raise _explain(self, e, f"look up {url}") from e

    def delete(self, url: str) -> None:
        try:
            self.fs.rm_file(self._path(url))
        except FileNotFoundError:
            pass
        except Exception as e:
            raise _explain(self, e, f"delete {url}") from e
        self.fs.invalidate_cache(self._path(url))

    def open_read(self, url: str) -> BinaryIO:
        try:
            return self.fs.open(self._path(url), "rb")
        except Exception as e:
            raise _explain(self, e, f"read {url}") from e

    def owns(self, url: str) -> bool:
        return url.startswith(f"s3://{self.bucket}/{self.prefix}")

    def check(self) -> None:
        """Fail early, with the fix, when the bucket is missing or the credentials are refused."""
        try:
            self.fs.ls(self.bucket, refresh=True)
        except Exception as e:
            raise _explain(self, e, f"list bucket {self.bucket!r}") from e

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"
