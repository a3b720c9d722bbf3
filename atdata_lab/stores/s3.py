"""``S3DataStore``: shards in an S3 bucket (AWS or any S3 server), through fsspec/s3fs.

A shard streams to S3 while it is written: a multipart upload whose memory is bounded by one
part (5 MiB), not one shard. The upload is completed only on ``commit()``, so the object never
appears under its final key half-written; ``abort()`` aborts the multipart upload.

A writer killed mid-shard cannot abort its upload, and an unfinished multipart upload is invisible
but kept (and billed) by S3. So each upload is noted in ``$ATDATA_HOME/pending-s3-uploads/`` while
it is open, and the next ``open_sink`` of a store on the same endpoint aborts the uploads of writers
on this machine that have died (:func:`abort_stale_uploads`).

A commit never replaces an existing object: the upload is completed (or the small object put) with
``If-None-Match: *``, so the server refuses it when the key exists, even when two writers race
(SeaweedFS, AWS S3 and MinIO honour it). Then an identical object is reused and a different one
raises :class:`ShardExistsError`. For servers that reject the header, ``conditional_writes=False``
checks for the key just before completing instead; two writers racing within that instant can then
still overwrite each other.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, BinaryIO

from .. import _journal
from ..errors import InvalidArgumentError, ShardExistsError, StoreError
from ..urls import note_configured_endpoint
from .base import DataStore, ShardSink
from .local import atdata_home, check_dataset_name

__all__ = ["S3DataStore", "S3Sink", "abort_stale_uploads"]

PART_SIZE = 32 << 20


def _pending_dir() -> Path:
    return atdata_home() / "pending-s3-uploads"


def _note_upload(store: S3DataStore, bucket: str, key: str, upload_id: str) -> Path | None:
    """Note an open multipart upload (best effort: a read-only home only loses the cleanup)."""
    return _journal.note(
        _pending_dir(), {"endpoint": store.endpoint_url, "bucket": bucket, "key": key, "upload_id": upload_id}
    )


def abort_stale_uploads(store: S3DataStore) -> int:
    """Abort the multipart uploads that writers on this machine started on ``store``'s endpoint and
    left unfinished: they died (killed mid-shard), or their own abort failed (the server was down).
    Returns how many were aborted.

    Uploads of open sinks, of other live processes, of other machines and of other endpoints are
    left alone.
    """
    aborted = 0
    for path, info in _journal.stale(_pending_dir()):
        if info.get("endpoint") != store.endpoint_url:
            continue
        try:
            store.fs.abort_mpu(info["bucket"], info["key"], info["upload_id"])
        except Exception as e:  # noqa: BLE001 - an upload already gone is fine; others stay noted
            if "NoSuchUpload" not in str(e) and not isinstance(e, FileNotFoundError):
                continue
        path.unlink(missing_ok=True)
        aborted += 1
    return aborted


def _explain(store: S3DataStore, e: BaseException, what: str) -> StoreError:
    text = str(e)
    if (
        isinstance(e, PermissionError)
        or "AccessDenied" in text
        or "InvalidAccessKeyId" in text
        or "SignatureDoesNotMatch" in text
    ):
        fix = (
            "the credentials were refused: check key/secret (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) "
            "and the bucket's permissions"
        )
    elif isinstance(e, FileNotFoundError) or "NoSuchBucket" in text:
        fix = f"bucket {store.bucket!r} does not exist: create it first (e.g. s3fs.S3FileSystem(...).mkdir({store.bucket!r}))"
    elif "Could not connect" in text or "Connect" in type(e).__name__ or isinstance(e, ConnectionError):
        fix = f"cannot connect to {store.endpoint_url or 'AWS S3'}: is the S3 server running and the endpoint right?"
    else:
        fix = "see the server's answer above"
    return StoreError(f"{store.describe()}: cannot {what}: {text or type(e).__name__}; {fix}")


def _lost_race(e: BaseException) -> bool:
    """True when S3 refused a conditional write: the key exists (412), or another conditional write
    to it was in flight (409)."""
    text = f"{e} {e.__cause__!r}"
    return any(s in text for s in ("pre-condition", "PreconditionFailed", "ConditionalRequestConflict"))


class S3Sink(ShardSink):
    """A multipart upload (or, for a small shard, one put), completed on ``commit`` only if the key
    does not exist yet, and aborted on ``abort``."""

    def __init__(self, store: S3DataStore, url: str) -> None:
        self.store = store
        self.url = url
        self._sha = hashlib.sha256()
        self._size = 0
        mode = "xb" if store.conditional_writes else "wb"  # "xb": s3fs sends If-None-Match: *
        try:
            self._f = store.fs.open(url[len("s3://") :], mode, block_size=PART_SIZE)
        except Exception as e:  # s3fs/botocore raise many types
            raise _explain(store, e, f"write {url}") from e
        self._noted: Path | None = None
        initiate = self._f._initiate_upload

        def initiate_and_note() -> None:  # note the upload id the moment S3 hands it out
            initiate()
            mpu = getattr(self._f, "mpu", None)
            if mpu and mpu.get("UploadId") and self._noted is None:
                self._noted = _note_upload(store, self._f.bucket, self._f.key, mpu["UploadId"])

        self._f._initiate_upload = initiate_and_note

    def _forget(self, *, done: bool = True) -> None:
        _journal.end(self._noted, done=done)
        self._noted = None

    def write(self, data: bytes | memoryview) -> None:
        self._sha.update(data)
        self._size += len(data)
        try:
            self._f.write(data)
        except Exception as e:
            raise _explain(self.store, e, f"write {self.url}") from e

    def commit(self) -> bool:
        # an empty object is written by s3fs without the condition: check first (shards are never empty)
        if (not self.store.conditional_writes or self._size == 0) and self.store.exists(self.url):
            self._settle_existing()
            return False
        try:
            self._f.close()
        except Exception as e:
            if not _lost_race(e):
                raise _explain(self.store, e, f"complete {self.url}") from e
            self.store.fs.invalidate_cache(self.url[len("s3://") :])
            self._settle_existing()
            return False
        self._forget()
        self.store.fs.invalidate_cache(self.url[len("s3://") :])
        return True

    def _settle_existing(self) -> None:
        """The key is taken: drop our upload; fine when the object holds exactly our bytes, else refuse."""
        self.abort()
        same = False
        if self.store.exists(self.url) and self.store.size(self.url) == self._size:
            h = hashlib.sha256()
            with self.store.open_read(self.url) as f:
                while block := f.read(8 << 20):
                    h.update(block)
            same = h.hexdigest() == self._sha.hexdigest()
        if not same:
            raise ShardExistsError(
                f"{self.url} already exists with different content (or another writer is writing it right now); "
                "a store never replaces a shard (an entry or a published record may use it): write under another "
                "name or tag (store.shard_url(name, i, tag=...))",
                url=self.url,
            )

    def abort(self) -> None:
        try:
            self._f.discard()  # aborts the multipart upload
            self._forget()
        except Exception:  # noqa: BLE001 - aborting must never raise over the original error
            self._forget(done=False)  # still noted: the next open_sink on this endpoint aborts it
        self._f.closed = True  # so s3fs does not try to flush the discarded buffer when collected


def _read_credentials(credentials: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """atdata's S3 credentials: a dict, or a ``.env`` file of ``KEY=value`` lines (checked)."""
    if isinstance(credentials, dict):
        creds = dict(credentials)
        where = "the credentials dict"
    else:
        path = Path(credentials).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise InvalidArgumentError(f"cannot read S3 credentials from {path}: {e.strerror or e}") from None
        creds = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, _, v = line.removeprefix("export ").partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            creds[k.strip()] = v
        where = str(path)
    missing = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not creds.get(k)]
    if missing:
        raise InvalidArgumentError(f"{where} lacks {', '.join(missing)} (S3 credentials need both keys)")
    return creds


class S3DataStore(DataStore):
    """Shards in S3: ``s3://{bucket}/{prefix}{name}/{name}-%06d.tar``.

    ``S3DataStore("my-bucket", endpoint_url=..., key=..., secret=...)``, or atdata's form
    ``S3DataStore(credentials, bucket="my-bucket")`` where ``credentials`` is a dict (or the path of
    a ``.env`` file) with ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and optionally
    ``AWS_ENDPOINT`` (and ``AWS_REGION``).

    Args:
        credentials: The bucket name (our form), or atdata's credentials when ``bucket=`` is given.
        bucket: The bucket (it must exist).
        prefix: A key prefix, e.g. ``"datasets/"``.
        endpoint_url: For S3 servers other than AWS (MinIO, SeaweedFS, ...).
        key, secret: Credentials; default: the usual AWS environment variables and config.
        profile: An AWS config profile.
        region: The bucket's region (recorded in published records).
        conditional_writes: Commit with ``If-None-Match: *`` so an existing object is never replaced,
            even by two writers racing (default). ``False`` for S3 servers that reject the header:
            the commit then checks for the key just before completing (a narrow race remains).
    """

    def __init__(
        self,
        credentials: str | os.PathLike[str] | dict[str, Any] | None = None,
        *,
        bucket: str | None = None,
        prefix: str = "",
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        conditional_writes: bool = True,
    ) -> None:
        if bucket is None:  # our form: the first argument is the bucket
            if not isinstance(credentials, str):
                raise InvalidArgumentError(
                    "S3DataStore needs a bucket: S3DataStore('my-bucket', ...) or S3DataStore(credentials, bucket='my-bucket')"
                )
            bucket, credentials = credentials, None
        if credentials is not None:
            creds = _read_credentials(credentials)
            key = key if key is not None else creds["AWS_ACCESS_KEY_ID"]
            secret = secret if secret is not None else creds["AWS_SECRET_ACCESS_KEY"]
            endpoint_url = endpoint_url or creds.get("AWS_ENDPOINT") or creds.get("AWS_ENDPOINT_URL")
            region = region or creds.get("AWS_REGION")
        try:
            import s3fs
        except ImportError:
            raise ImportError("S3DataStore needs s3fs: pip install 'atdata-lab[s3]'") from None
        if not bucket or "/" in bucket:
            raise InvalidArgumentError(f"bucket must be a bucket name without '/', not {bucket!r}")
        self.bucket = bucket
        self.conditional_writes = bool(conditional_writes)
        self.prefix = prefix.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        note_configured_endpoint(self.endpoint_url)  # you chose it: records naming it may get credentials
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
        return (
            f"S3DataStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"
        )

    @property
    def storage_options(self) -> dict[str, Any]:
        return dict(self._options)

    def shard_url(self, dataset: str, index: int, *, tag: str | None = None) -> str:
        check_dataset_name(dataset)
        stem = f"{dataset}-{tag}" if tag else dataset
        return f"s3://{self.bucket}/{self.prefix}{dataset}/{stem}-{index:06d}.tar"

    def open_sink(self, url: str) -> S3Sink:
        abort_stale_uploads(self)
        return S3Sink(self, url)

    def clean_stale(self) -> int:
        return abort_stale_uploads(self)

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
