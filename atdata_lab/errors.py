"""The project's errors: one root, and each subclass also the builtin it specialises.

Every error raised on purpose by ``atdata_lab`` derives from :class:`AtdataLabError`.
Where a user would naturally catch a builtin (``KeyError`` for "not found",
``ValueError`` for "bad input"), the error subclasses that builtin too, so code
written for atdata (``except KeyError:``) keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AppViewError",
    "AppViewRequiredError",
    "AppViewUnavailableError",
    "AtdataLabError",
    "AtdataLabWarning",
    "AtmosphereError",
    "AuthenticationError",
    "BlobMismatchError",
    "BusyError",
    "SampleIndexError",
    "DataNotFoundError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "LensNotFoundError",
    "ManifestError",
    "ManifestNotFoundError",
    "MissingDependencyError",
    "NotFoundError",
    "PartialFailureError",
    "NoAtmosphereError",
    "EntryConflictError",
    "EntryNotFoundError",
    "PDSUnavailableError",
    "PromotionCancelled",
    "PromotionConflictError",
    "PromotionDowngradeError",
    "PublishedDataWarning",
    "RateLimitedError",
    "RecordConflictError",
    "RecordNotFoundError",
    "RecordSizeError",
    "RecordTooLargeError",
    "RecordValidationError",
    "RequestError",
    "SampleDecodeError",
    "SampleKeyError",
    "RemoteAccessDeniedError",
    "RemoteUnavailableError",
    "ResponseTooLargeError",
    "SandboxError",
    "SchemaConflictError",
    "SchemaError",
    "SchemaNotFoundError",
    "ShardError",
    "ShardExistsError",
    "ShardNotFoundError",
    "StoreError",
    "UntrustedSourceError",
]


class AtdataLabError(Exception):
    """Root of every error raised on purpose by atdata_lab."""


class InvalidArgumentError(AtdataLabError, ValueError):
    """Bad input: the message names the problem and the fix."""


class InvalidTypeError(AtdataLabError, TypeError):
    """A value of the wrong type: the message names what was expected."""


class SampleIndexError(AtdataLabError, IndexError):
    """A sample index outside the dataset: the message gives the number of samples."""


class BusyError(AtdataLabError, RuntimeError):
    """Work of the same kind is still running: wait for it or cancel it."""


class DataNotFoundError(AtdataLabError, FileNotFoundError):
    """No shards where the path or pattern points."""


class NotFoundError(AtdataLabError, KeyError):
    """Base for "no such thing" errors. ``str()`` is the message, not its repr."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable.
        return str(self.args[0]) if self.args else ""


class EntryNotFoundError(NotFoundError):
    """No dataset entry with that name or CID in the index."""


class _AtdataFields:
    """Pickles with the arguments the error was made with (its fields survive DataLoader workers)."""

    _made_with: tuple = ()

    def __reduce__(self) -> tuple:
        return (type(self), self._made_with, dict(vars(self)))


class SampleKeyError(_AtdataFields, NotFoundError):
    """No sample with that ``__key__`` (``Dataset.get``).

    ``SampleKeyError(key)`` as in atdata, or ``SampleKeyError(key, message)``; ``.key`` is the key.
    """

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message if message is not None else f"no sample has key {key!r}")
        self._made_with = (key, message)
        self.key = key


class PartialFailureError(AtdataLabError, RuntimeError):
    """Some shards failed in ``Dataset.process_shards``; the others' results are kept.

    Attributes (atdata's): ``succeeded_shards``, ``failed_shards``, ``errors`` (shard -> the
    exception) and ``results`` (shard -> fn's result, for the shards that succeeded).
    """

    def __init__(
        self,
        succeeded_shards: list[str],
        failed_shards: list[str],
        errors: dict[str, BaseException],
        results: dict[str, Any],
    ) -> None:
        self.succeeded_shards = succeeded_shards
        self.failed_shards = failed_shards
        self.errors = errors
        self.results = results
        lines = [f"{len(failed_shards)} of {len(succeeded_shards) + len(failed_shards)} shards failed:"]
        lines += [f"  {s}: {errors[s]!r}" for s in failed_shards[:5]]
        if len(failed_shards) > 5:
            lines.append(f"  ... and {len(failed_shards) - 5} more")
        lines.append("retry them with process_shards(fn, shards=err.failed_shards)")
        super().__init__("\n".join(lines))


class SchemaNotFoundError(NotFoundError):
    """No schema with that reference in the index."""


class EntryConflictError(AtdataLabError, ValueError):
    """A name already holds different content (pass ``overwrite=True`` to replace it)."""


class SchemaConflictError(AtdataLabError, ValueError):
    """A different schema is already stored under the same name and version.

    Attributes:
        diff: The :class:`~atdata_lab.schema_diff.SchemaDiff` between stored and new.
        suggested_version: The next semantic version to publish the new schema under.
    """

    def __init__(self, message: str, *, diff: Any = None, suggested_version: str | None = None):
        super().__init__(message)
        self.diff = diff
        self.suggested_version = suggested_version


class ShardError(_AtdataFields, AtdataLabError, ValueError):
    """A shard is corrupt, truncated or unreadable. The message names shard and member.

    ``ShardError(message)``, or atdata's ``ShardError(shard_id, reason)``. Attributes: ``shard_id``
    (None for a message alone) and ``reason``.
    """

    def __init__(self, shard_id: str, reason: str | None = None) -> None:
        if reason is None:
            super().__init__(shard_id)
            self.shard_id: str | None = None
            self.reason = shard_id
        else:
            super().__init__(f"cannot read shard {shard_id}: {reason}")
            self.shard_id, self.reason = shard_id, reason
        self._made_with = (shard_id, reason)


class ShardNotFoundError(ShardError, DataNotFoundError):
    """A shard is not where its URL points (deleted, 404): both a ``ShardError`` and a ``FileNotFoundError``."""


class LensNotFoundError(_AtdataFields, AtdataLabError, ValueError):
    """No lens (or path of lenses) leads from one sample type to another; the message names the hop
    that is missing.

    ``LensNotFoundError(source_type, view_type, available_targets=None)`` as in atdata (or a
    message alone). Attributes: ``source_type``, ``view_type``, ``available_targets`` (``[(type,
    lens name)]`` one lens away from the source).
    """

    def __init__(
        self,
        source_type: Any,
        view_type: Any = None,
        available_targets: list[tuple[Any, str]] | None = None,
        *,
        message: str | None = None,
    ) -> None:
        self.source_type, self.view_type = source_type, view_type
        self.available_targets = list(available_targets or [])
        if message is None and view_type is None and isinstance(source_type, str):
            message, self.source_type = source_type, None
        if message is None:
            src, view = _type_name(source_type), _type_name(view_type)
            message = f"no lens from {src} to {view}"
            if self.available_targets:
                reach = ", ".join(f"{_type_name(t)} (via {n})" for t, n in self.available_targets)
                message += f"; {src} leads to {reach}"
            message += f". Register one: @atdata.lens def f(src: {src}) -> {view}: ..."
        super().__init__(message)
        self._made_with = (source_type, view_type, available_targets)


def _type_name(t: Any) -> str:
    return str(getattr(t, "__name__", t))


class SampleDecodeError(AtdataLabError, ValueError):
    """A stored sample does not fit the sample type. The message names shard, key and field."""


class ManifestError(AtdataLabError, ValueError):
    """A shard's manifest (``.manifest.json`` / ``.manifest.parquet``) is missing, malformed or does
    not match its shard; the message names the file and the fix."""


class ManifestNotFoundError(ManifestError, DataNotFoundError):
    """A shard has no manifest beside it (both a ``ManifestError`` and a ``FileNotFoundError``); the
    message says how to make one."""


class MissingDependencyError(AtdataLabError, ImportError):
    """An optional package a feature needs is not installed; the message names the ``pip install``."""


class StoreError(AtdataLabError, OSError):
    """A data store (disk, S3) failed; the message names the store and the fix."""


class ShardExistsError(StoreError, FileExistsError):
    """A store refused to publish a shard: its URL already holds a different file (a store never
    replaces a shard, which an entry or a published record may still use).

    Attributes:
        url: The shard URL that is taken.
    """

    def __init__(self, message: str, *, url: str | None = None):
        super().__init__(message)
        self.url = url


class SchemaError(_AtdataFields, AtdataLabError, ValueError):
    """A schema cannot become a sample type (e.g. a field name that would shadow an attribute).

    ``SchemaError(message)``, or atdata's ``SchemaError(sample_type_name, expected_fields,
    actual_fields)`` for a field mismatch (the message lists the missing and unexpected fields).
    """

    def __init__(
        self,
        sample_type_name: str,
        expected_fields: list[str] | None = None,
        actual_fields: list[str] | None = None,
    ) -> None:
        self.sample_type_name = sample_type_name
        self.expected_fields = list(expected_fields or [])
        self.actual_fields = list(actual_fields or [])
        self._made_with = (sample_type_name, expected_fields, actual_fields)
        if expected_fields is None and actual_fields is None:
            super().__init__(sample_type_name)
            return
        missing = sorted(set(self.expected_fields) - set(self.actual_fields))
        extra = sorted(set(self.actual_fields) - set(self.expected_fields))
        parts = [f"schema mismatch for {sample_type_name}"]
        if missing:
            parts.append(f"missing fields: {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected fields: {', '.join(extra)}")
        super().__init__("; ".join(parts))


class UntrustedSourceError(AtdataLabError, PermissionError):
    """A published record points somewhere the trust policy does not allow (a local file, an
    internal address, a chained fsspec URL); the message names the record, the URL and the setting
    that allows it (see :class:`~atdata_lab.urls.TrustPolicy`)."""


class RemoteAccessDeniedError(AtdataLabError, PermissionError):
    """A data host refused the request (HTTP 401/403, S3 AccessDenied); names the URL."""


class RemoteUnavailableError(AtdataLabError, ConnectionError):
    """A data host could not be reached or failed (connection refused, timeout, 5xx); names the URL."""


class ResponseTooLargeError(AtdataLabError, ValueError):
    """A server sent more than we read from it (a body over the size or nesting limit, a listing
    that never ends); names the URL and the limit."""


class SandboxError(AtdataLabError, RuntimeError):
    """The local sandbox PDS could not be installed, started or stopped; the message names the fix."""


class RecordValidationError(AtdataLabError, ValueError):
    """A record breaks its lexicon (length, count, float, format). Names field and limit."""


class PromotionCancelled(AtdataLabError):
    """The promotion was cancelled before its records were written; nothing was published."""


class PromotionConflictError(AtdataLabError, ValueError):
    """Promotion cannot proceed: a published schema with the same name@version differs."""

    def __init__(self, message: str, *, diff: Any = None, suggested_version: str | None = None):
        super().__init__(message)
        self.diff = diff
        self.suggested_version = suggested_version


class PromotionDowngradeError(PromotionConflictError):
    """A promotion would remove or weaken something already published (a field, the storage, the
    checksums) and the call did not say so on purpose.

    ``downgrades`` lists each :class:`~atdata_lab.promotion.Downgrade`: the field, the published
    value, the new one, and the argument that says it on purpose (``clear=[...]`` or ``downgrade=True``).
    """

    def __init__(self, message: str, *, downgrades: list[Any] | None = None):
        super().__init__(message)
        self.downgrades = list(downgrades or [])


class NoAtmosphereError(AtdataLabError, ValueError):
    """An operation needs a logged-in Atmosphere and the index has none attached."""


class AtmosphereError(AtdataLabError):
    """Base of errors talking to an ATProto PDS."""


class RequestError(AtmosphereError):
    """A PDS request failed. ``response`` carries the server's answer when there was one."""

    def __init__(self, message: str, *, response: Any = None, status: int | None = None):
        super().__init__(message)
        self.response = response
        self.status = status


class AuthenticationError(RequestError, PermissionError):
    """Login failed or the session is no longer valid: log in again."""


class RecordNotFoundError(RequestError, KeyError):
    """The record does not exist in the repository."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RateLimitedError(RequestError):
    """The PDS rate limit was hit. ``reset_at`` is when it resets (datetime, UTC) if known."""

    def __init__(self, message: str, *, reset_at: Any = None, response: Any = None, status: int | None = 429):
        super().__init__(message, response=response, status=status)
        self.reset_at = reset_at


class RecordTooLargeError(RequestError, ValueError):
    """A record or blob exceeds the server's limit."""


class BlobMismatchError(RequestError, ValueError):
    """The bytes a PDS served for a blob do not match the blob's CID (nothing is kept)."""


class PDSUnavailableError(RequestError, ConnectionError):
    """The PDS could not be reached or answered 5xx after retries."""


class RecordSizeError(RecordValidationError, RecordTooLargeError):
    """A record is too large for the PDS, found before sending (both a validation and a size error)."""

    def __init__(self, message: str, *, response: Any = None, status: int | None = None):
        RecordTooLargeError.__init__(self, message, response=response, status=status)


class RecordConflictError(RequestError, ValueError):
    """A write lost a race: the record changed since ``swap_record`` was read, or already exists.

    Attributes:
        current_cid: The record's CID on the server now, when known (None: the record is absent).
    """

    def __init__(
        self, message: str, *, current_cid: str | None = None, response: Any = None, status: int | None = None
    ):
        super().__init__(message, response=response, status=status)
        self.current_cid = current_cid


class AppViewError(AtmosphereError):
    """An AppView (the service that indexes ``science.alt.dataset.*`` records across publishers
    and answers searches) refused a request or answered something that is not a valid response.

    Attributes:
        url: The AppView base URL (None when unknown).
        status: The HTTP status, when an answer arrived.
        response: The answer (a :class:`~atdata_lab.atmosphere._http.PDSResponse`), when one arrived.
    """

    def __init__(self, *args: Any, url: str | None = None, status: int | None = None, response: Any = None):
        super().__init__(*args)
        self.url = url
        self.status = status
        self.response = response


class AppViewUnavailableError(AppViewError, ConnectionError):
    """The configured AppView cannot be reached, timed out or failed with 5xx (after retries).

    Raised where the AppView is required (``index.search(scope="network")``); where it is
    optional (``scope="all"``) the search goes on without it and says so in its result.

    Attributes:
        url: The AppView URL.
        reason: Why it is unavailable.
    """

    def __init__(self, url: str, reason: str, *, status: int | None = None, response: Any = None):
        super().__init__(
            f"the AppView at {url} is unavailable: {reason} — check that it runs (the sandbox's: "
            "atdata-lab sandbox start --appview) and that appview= or ATDATA_APPVIEW_URL names it",
            url=url,
            status=status,
            response=response,
        )
        self.reason = reason


class AppViewRequiredError(AppViewError, ValueError):
    """An operation needs an AppView and none is configured.

    Attributes:
        operation: What needed it (an XRPC method or a call).
    """

    def __init__(self, operation: str):
        super().__init__(
            f"{operation} needs an AppView and none is configured: pass appview=URL to the Atmosphere "
            "(Atmosphere.login(handle, password, appview=URL)) or set ATDATA_APPVIEW_URL "
            "(the sandbox's: atdata-lab sandbox start --appview)"
        )
        self.operation = operation


class AtdataLabWarning(UserWarning):
    """Root of the warnings atdata_lab issues on purpose."""


class PublishedDataWarning(AtdataLabWarning):
    """Shard files that published records still point to were kept (or, with ``force=True``, deleted).

    Attributes:
        records: at:// URI of each published record concerned -> the URLs of its files in question.
        deleted: True when the files were deleted (``force=True``): those records no longer load.
    """

    def __init__(self, message: str, *, records: dict[str, list[str]] | None = None, deleted: bool = False):
        super().__init__(message)
        self.records = dict(records or {})
        self.deleted = deleted
