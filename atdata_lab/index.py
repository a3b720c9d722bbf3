"""``Index``: datasets and schemas you develop privately, before you promote them.

An index keeps entries (name -> shards, schema, checksums, offsets) in a provider (SQLite by
default, Redis for teams) and writes data into a data store (local disk by default, S3).
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from . import _journal, promotion
from .atmosphere._store import PDSBlobStore
from .cid import cid_for
from .columns import as_columns, is_columnar
from .dataset import Dataset
from .entry import IndexEntry
from .errors import (
    AppViewError,
    AppViewRequiredError,
    AtdataLabError,
    AtdataLabWarning,
    EntryConflictError,
    EntryNotFoundError,
    InvalidArgumentError,
    InvalidTypeError,
    NotFoundError,
    PublishedDataWarning,
    SchemaConflictError,
    SchemaNotFoundError,
    ShardExistsError,
)
from .lens import Lens, LensNetwork
from .logs import logger
from .manifest.build import manifest_of_shard
from .manifest.builder import ManifestSidecars
from .manifest.shard_manifest import manifest_urls
from .progress import ProgressEvent, ProgressLike, resolve_progress
from .providers.base import IndexProvider
from .repository import Repository, open_provider
from .sample import DictSample, codec_for
from .schema import (
    Field,
    FieldType,
    Schema,
    bump_version,
    fields_of,
    parse_schema_ref,
    schema_ref,
    version_key,
)
from .schema_diff import resolve_schema, schema_diff
from .search import AppViewSearchBackend, SearchResult, SearchResults
from .search._aggregator import merge_results
from .search._local import result_from_entry
from .shards import HintObserver, ShardInfo, ShardRow, ShardSetWriter, encode_samples_into, peek_samples
from .stores.base import DataStore
from .stores.local import FileSink, LocalDiskStore, atdata_home, check_dataset_name
from .transfer import copy_shards
from .urls import is_local, local_path
from .views.text import shard_label

__all__ = ["Index", "SearchPage", "get_default_index", "set_default_index"]

# Shards published by a write whose entry is not committed yet, noted in $ATDATA_HOME/pending-writes/
# (see atdata_lab._journal) so that a writer killed in between leaves nothing behind for long: the
# next write on this machine deletes the shards no entry references (see Index._clean_stale_writes).


def _pending_writes_dir() -> Path:
    return atdata_home() / "pending-writes"


class SearchPage(list):
    """One page of :meth:`Index.search`: a list of the matching local :class:`IndexEntry` objects
    (``total``, ``offset``, ``limit`` describe their paging), and atdata's
    :class:`~atdata_lab.search.SearchResults` fields for every hit, local and network alike:
    ``items`` (:class:`~atdata_lab.search.SearchResult` objects), ``cursor``, ``total_hint``,
    ``source``, ``warnings``.

    With ``scope="local"`` the list and ``items`` hold the same datasets; with ``scope="network"``
    the list is empty (no local entry was searched) and ``items`` holds what the AppView found.
    """

    def __init__(
        self,
        entries: Iterable[IndexEntry],
        total: int,
        offset: int,
        limit: int | None,
        *,
        items: list[SearchResult] | None = None,
        cursor: str | None = None,
        total_hint: int | None = None,
        source: str = "local",
        warnings: list[str] | None = None,
    ) -> None:
        super().__init__(entries)
        self.total = total
        self.offset = offset
        self.limit = limit
        self._items = items
        self.cursor = cursor
        self.total_hint = total if total_hint is None and items is None else total_hint
        self.source = source
        self.warnings = list(warnings or [])

    @property
    def items(self) -> list[SearchResult]:
        """Every hit as a :class:`~atdata_lab.search.SearchResult` (atdata's ``SearchResults.items``)."""
        if self._items is None:
            self._items = [result_from_entry(e) for e in self]
        return self._items

    def __repr__(self) -> str:
        start = self.offset + 1 if self else 0
        network = sum(r.source != "local" for r in self.items) if self._items is not None else 0
        more = f"; {network} from the network" if network else ""
        return f"SearchPage({start}-{self.offset + len(self)} of {self.total}{more})"


class ShardOffsets:
    """Fetches one shard's offset index (offsets and keys) from an index provider, when a Dataset
    first needs it. Pickled (for DataLoader workers), a SQLite index is opened again by path in
    the receiving process; other providers hold connections and credentials that are not sent
    along, so there a shard is scanned on first use instead."""

    def __init__(self, provider: IndexProvider | None) -> None:
        self.provider = provider

    def __call__(self, url: str) -> tuple[np.ndarray, list[str], np.ndarray | None] | None:
        if self.provider is None:
            return None
        r = self.provider.get_shards([url]).get(url)
        if r is None or not r.get("offsets"):
            return None
        return ShardInfo.offsets_from_blob(r["offsets"])

    def __reduce__(self) -> tuple:
        path = getattr(self.provider, "path", None)
        if self.provider is not None and self.provider.kind == "sqlite" and path is not None:
            return (_sqlite_offsets, (str(path),))
        return (ShardOffsets, (None,))


def _sqlite_offsets(path: str) -> ShardOffsets:
    from .providers.sqlite import SQLiteProvider  # sqlite_utils loads when needed

    return ShardOffsets(SQLiteProvider(path))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _conforms(data: Schema, stored: Schema) -> bool:
    """True when data described by ``data`` satisfies ``stored`` (stored dtype None = any)."""
    if len(data.fields) != len(stored.fields):
        return False
    for f, g in zip(data.fields, stored.fields):
        if f.name != g.name or f.optional != g.optional or f.type.kind != g.type.kind:
            return False
        if f.type.kind == "ndarray" and g.type.dtype is not None and f.type.dtype != g.type.dtype:
            return False
        if f.type.kind == "list" and f.type.identity() != g.type.identity():
            return False
    return True


# bool before int: a bool is an int in Python
_KINDS_BY_TYPE = (
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (str, "str"),
    (bytes, "bytes"),
    (list, "list"),
    (dict, "dict"),
)


def _diff_text(old: Schema, new: Schema) -> str:
    """The fields that differ between two schemas, for an error message."""
    return (
        ", ".join(
            f"{c.name} ({c.status}{': ' + '; '.join(c.changes) if c.changes else ''})"
            for c in schema_diff(old, new).changed()
        )
        or "field order"
    )


def _infer_schema(name: str, sample: DictSample) -> Schema:
    """A schema for schema-less data, from one sample's values."""
    fields = []
    for k, v in sample.items():
        if isinstance(v, np.ndarray):
            fields.append(Field(k, FieldType("ndarray", dtype=v.dtype.str, shape=v.shape), False))
            continue
        kind = next((kind for t, kind in _KINDS_BY_TYPE if isinstance(v, t)), None)
        if kind is None:  # None: we cannot tell the kind; keep it as an optional string
            fields.append(Field(k, FieldType("str"), True))
        else:
            fields.append(Field(k, FieldType(kind), False))
    return Schema(name, "1.0.0", tuple(fields), None, _now())


class Index:
    """Your datasets and schemas, before and after promotion.

    Args:
        provider: ``None`` or ``"sqlite"`` (default: ``$ATDATA_HOME/index.db``, i.e.
            ``~/.atdata/index.db``), ``"redis"``, ``"postgres"``, or an :class:`IndexProvider` instance.
        path: The SQLite file (implies ``provider="sqlite"``).
        data_store: Where new shards go (default :class:`LocalDiskStore`). A
            :class:`~atdata_lab.atmosphere.PDSBlobStore` (atdata's "publish as blobs") keeps new
            shards in the default local store and makes :meth:`promote_dataset` upload them as blobs.
        atmosphere: A logged-in :class:`~atdata_lab.atmosphere.Atmosphere` for promotion.
        redis: A ``redis.Redis`` client (implies ``provider="redis"``).
        url: A ``redis://`` URL (implies ``provider="redis"``).
        key_prefix: Redis key prefix, so several indexes can share one Redis.
        dsn: A PostgreSQL DSN, ``postgresql://user:password@host:5432/dbname`` (implies
            ``provider="postgres"``; needs ``atdata-lab[postgres]``). Reprs and errors mask its password.
        repos: Named :class:`~atdata_lab.repository.Repository` objects mounted beside this
            index (``"local"``): ``list_datasets()`` and ``list_labels()`` cover them all, and a
            label named ``"lab/mnist"`` lives in repository ``"lab"``.

    atdata's ``auto_stubs=``/``stub_dir=`` (IDE stub files written under your home) are not taken:
    the types :meth:`get_schema_type` makes are real classes with annotated fields already.
    """

    provider: IndexProvider
    data_store: DataStore
    atmosphere: Any

    def __init__(
        self,
        provider: str | IndexProvider | None = None,
        *,
        path: str | os.PathLike | None = None,
        data_store: DataStore | None = None,
        atmosphere: Any = None,
        redis: Any = None,
        url: str | None = None,
        key_prefix: str = "atdata:",
        dsn: str | None = None,
        repos: dict[str, Repository] | None = None,
    ) -> None:
        self.provider = open_provider(
            provider, path=path, dsn=dsn, redis=redis, url=url, key_prefix=key_prefix
        )
        self._promote_copy_to: Any = None
        if isinstance(data_store, PDSBlobStore):  # not a DataStore: the blobs come with promotion
            self._promote_copy_to, data_store = data_store, None
        self.data_store: DataStore = data_store if data_store is not None else LocalDiskStore()
        self.atmosphere = atmosphere
        self._stores: list[DataStore] = []  # other stores used this session (copies), for credentials
        self._types = SimpleNamespace()
        self._repos: dict[str, Repository] = {}
        for repo_name, repo in (repos or {}).items():
            if repo_name == "local" or not isinstance(repo, Repository):
                raise InvalidArgumentError(
                    f"repos={{{repo_name!r}: {repo!r}}}: give Repository objects under names other than "
                    "'local' (that name is this index itself), e.g. repos={'lab': create_repository('sqlite', path=...)}"
                )
            self._repos[repo_name] = repo
        self._repo_indexes: dict[str, Index] = {}

    def __repr__(self) -> str:
        atm = f", atmosphere={self.atmosphere!r}" if self.atmosphere is not None else ""
        return f"Index({self.provider!r}, data_store={self.data_store!r}{atm})"

    # ------------------------------------------------------------------ writing
    def write(
        self,
        samples: Iterable[Any],
        *,
        name: str,
        schema_ref: str | None = None,
        maxcount: int | None = None,
        maxsize: int | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
        force: bool = False,
        progress: ProgressLike = True,
        data_store: DataStore | None = None,
        manifest: bool = False,
        sample_type: type | None = None,
        compression: str | None = None,
        _keep_taken: bool = False,
    ) -> IndexEntry:
        """Write samples as a new dataset: shards into the data store, entry into the index.

        Each sample is serialized once, straight into the store's shards (``maxcount`` samples
        or ``maxsize`` bytes per shard at most). The schema is stored (reused when an
        identical one exists). The entry is committed only after every shard is complete.
        Writing an existing name with identical content returns the existing entry;
        different content raises unless ``overwrite=True``.

        Overwriting deletes the old entry's shards that nothing else uses. Shards a published
        record of this index still points to are kept, so the record keeps loading (a
        :class:`~atdata_lab.errors.PublishedDataWarning` names it); ``force=True`` deletes them too,
        and the warning names the records that no longer load.

        ``data_store`` writes this dataset's shards to another store than the index's.
        ``schema_ref`` names a stored schema the entry should use; the data must fit it (unlike
        atdata, which records whatever ref it is given).

        ``manifest=True`` also writes each shard's manifest (atdata's ``.manifest.json`` and
        ``.manifest.parquet`` beside it) in the same pass, published just before its shard, so
        ``index.dataset(name).query(where=...)`` works (see :meth:`build_manifests` for entries
        written without).

        ``samples`` may also be columns of ``sample_type`` (a SampleBatch, a dict of arrays or lists,
        a pandas DataFrame, a pyarrow Table), written without one object per sample into the same
        bytes (see :func:`~atdata_lab.dataset.write_samples`).
        ``compression="gzip"`` writes compact ``.tar.gz`` shards that atdata still reads (see
        :func:`~atdata_lab.dataset.write_samples`).

        Raises:
            ValueError: empty input or a bad name (nothing is written), data that does not fit
                ``schema_ref`` (nothing is kept), or columns that do not match ``sample_type``.
            SchemaNotFoundError: ``schema_ref`` is not stored in this index (a ``KeyError``).
            EntryConflictError: the name holds different content (a ``ValueError``).
        """
        check_dataset_name(name)
        tags = self._check_tags(tags)
        total: int | None
        cols = as_columns(samples, sample_type, f"write({name!r})") if is_columnar(samples) else None
        if cols is not None:
            cls, first, total = cols.sample_type, None, cols.n
            every: Iterator[Any] = cols.samples()
        else:
            first, every, total = peek_samples(samples, f"write({name!r})")
            cls = type(first)
        codec = codec_for(cls)
        nd_fields = (
            [f.name for f in fields_of(cls) if f.type.kind == "ndarray"] if cls is not DictSample else []
        )
        observer = HintObserver(nd_fields)
        store = data_store if data_store is not None else self.data_store
        self.remember_store(store)
        self._clean_stale_writes()
        with contextlib.suppress(OSError, AtdataLabError):
            store.clean_stale()  # staging files of dead writers, whatever name they were writing
        journal: Path | None = None
        existing = self.provider.get_entry(name)
        # Never write over files an entry may use: a name that exists (or left files) gets fresh URLs.
        gz = ".gz" if compression == "gzip" else ""
        tag = (
            uuid.uuid4().hex[:8]
            if existing is not None or store.exists(store.shard_url(name, 0) + gz)
            else None
        )
        sidecars = ManifestSidecars(cls, first) if manifest else None
        writer = ShardSetWriter(
            lambda i: store.shard_url(name, i, tag=tag) + gz,
            store.open_sink,
            maxcount=maxcount,
            maxsize=maxsize,
            sidecars=sidecars,
            exists=store.exists,
            compression=compression,
        )
        try:
            if cols is not None and not manifest:
                cols.observe(observer)
                n = cols.write_into(writer, progress=progress)
            else:
                n = encode_samples_into(
                    writer, every, codec, observer=observer, progress=progress, total=total
                )
            infos = writer.finish()
            if cls is DictSample and first is not None:  # (columns always have a typed sample type)
                schema = _infer_schema(name, first)
            else:
                schema = Schema.from_type(cls).with_hints(observer.dtypes, observer.shapes)
            chosen, is_new = self._schema_for(schema, schema_ref, f"write({name!r})")
            cid = self._entry_cid(chosen, infos, n)
            asked = name
            if _keep_taken and existing is not None and not overwrite and existing["cid"] != cid:
                name, existing = self._free_name(name, cid)
            same = self._resolve_existing(existing, cid, overwrite)
            if same is not None:
                writer.abort()
                if manifest:  # the same data, written before without manifests: add them
                    self.build_manifests(same, progress=progress)
                return same
            if is_new:
                self._put_schema(chosen)
            if sidecars is not None:
                sidecars.schema_version = chosen.version  # the manifests are made on commit
            journal = self._note_write([i.url for i in infos])
            writer.commit()
        except BaseException:
            writer.abort()
            self._narrow_write(
                journal, writer.created
            )  # shards this write did not create are never cleaned up
            _journal.end(journal, done=not writer.created)
            raise
        if len(writer.created) != len(infos):  # an identical file was there already: not ours to clean up
            self._narrow_write(journal, writer.created)
        try:
            entry = self._commit_entry(
                name,
                chosen.ref,
                infos,
                n,
                cid,
                description,
                tags,
                license,
                metadata,
                overwrite,
                existing,
                force=force,
                call="index.write",
            )
        except BaseException:  # the entry did not change: its files were never touched; drop the new ones
            try:
                self._delete_unused(writer.created)
            except BaseException:
                _journal.end(journal, done=False)  # the index is unreachable: a later write cleans up
                raise
            _journal.end(journal, done=True)
            raise
        _journal.end(journal, done=True)
        if name != asked:
            warnings.warn(
                f"an entry named {asked!r} already holds other data, so this dataset is indexed as {name!r} "
                f"(nothing was replaced; index.write(..., overwrite=True) replaces)",
                AtdataLabWarning,
                stacklevel=3,
            )
        return entry

    def write_samples(self, samples: Iterable[Any], *, name: str, **options: Any) -> IndexEntry:
        """atdata's name for :meth:`write`, and its behaviour when ``name`` holds other content: no
        error (atdata adds a second entry of that name). Here nothing is replaced either: the new
        dataset is indexed as ``{name}-v2`` (``-v3``...: the first free name, or the one already
        holding this content) with a warning. Same content returns the existing entry, and
        ``overwrite=True`` replaces, as in :meth:`write`.
        """
        return self.write(samples, name=name, _keep_taken=True, **options)

    def _free_name(self, name: str, cid: str) -> tuple[str, dict[str, Any] | None]:
        """The first of ``{name}-v2``, ``-v3``... that is free or holds ``cid``, and its entry row."""
        for n in range(2, 1000):
            candidate = check_dataset_name(f"{name}-v{n}")
            existing = self.provider.get_entry(candidate)
            if existing is None or existing["cid"] == cid:
                return candidate, existing
        raise EntryConflictError(
            f"{name!r} and {name}-v2 ... -v999 all hold other data; delete unused entries with "
            "index.delete_entry(...), write under another name, or pass overwrite=True"
        )

    def _index_id(self) -> str:
        path = getattr(self.provider, "path", None)
        return f"sqlite:{Path(path).resolve()}" if path is not None else repr(self.provider)

    def _note_write(self, urls: list[str]) -> Path | None:
        """Note shards about to be published (best effort: a read-only home only loses the cleanup)."""
        return _journal.note(_pending_writes_dir(), {"index": self._index_id(), "urls": urls})

    @staticmethod
    def _narrow_write(journal: Path | None, urls: list[str]) -> None:
        """Note only ``urls`` of a write's shards: those it created (an identical file that was already
        there belongs to someone else and is never cleaned up)."""
        info = _journal.read(journal) if journal is not None else None
        if info is not None and journal is not None:
            keep = set(urls)
            _journal.rewrite(journal, {**info, "urls": [u for u in info.get("urls", []) if u in keep]})

    def _clean_stale_writes(self) -> None:
        """Delete shards that writes on this machine published without committing their entry (the
        writer was killed in between, or the index became unreachable), once no entry and no
        published record uses them."""
        ident = self._index_id()
        for path, info in _journal.stale(_pending_writes_dir()):
            if info.get("index") != ident:
                continue
            urls = [u for u in info.get("urls", []) if isinstance(u, str)]
            try:
                left = self._delete_unused(
                    urls
                )  # another store's are left: an index over that store cleans them
            except (AtdataLabError, OSError):
                continue  # the index or the store is unreachable now: try again next time
            if left:
                _journal.rewrite(path, {**info, "urls": left})
            else:
                path.unlink(missing_ok=True)

    def _commit_entry(
        self,
        name,
        ref,
        infos,
        n,
        cid,
        description,
        tags,
        license,
        metadata,
        overwrite,
        existing,
        *,
        force=False,
        call="index.write",
    ):
        entry = IndexEntry(
            name=name,
            cid=cid,
            schema_ref=ref,
            data_urls=[i.url for i in infos],
            num_samples=n,
            size_bytes=sum(i.size for i in infos),
            shard_checksums=[i.checksum for i in infos],
            metadata=dict(metadata or {}),
            created_at=_now(),
            description=description,
            tags=list(tags or []),
            license=license,
            _index=self,
        )
        shard_rows = [self._shard_row(i, name) for i in infos]
        self.provider.put_entry(entry.to_row(), shard_rows, replace=overwrite)
        if existing is not None:
            self._delete_unused(
                [u for u in existing["data_urls"] if u not in set(entry.data_urls)],
                force=force,
                call=f"{call}(..., name={name!r}, overwrite=True)",
                stacklevel=4,
            )
        return entry

    def _delete_unused(
        self, urls: list[str], *, force: bool = False, call: str | None = None, stacklevel: int = 3
    ) -> list[str]:
        """Delete shards of this index's store that no entry and no published record of this index
        references: the only place shard files are deleted.

        Shards a published record points to are kept unless ``force``; with ``call`` (the user's
        call, for the message) a :class:`PublishedDataWarning` names the records concerned and says
        whether they still load. Returns the unused URLs of other stores (left alone).
        """
        used = self.provider.urls_in_use(urls)
        unused = [u for u in urls if u not in used]
        published = self.published_urls(unused)
        left: list[str] = []
        records: dict[str, list[str]] = {}
        for url in unused:
            if not self.data_store.owns(url):
                left.append(url)
                continue
            if url in published:
                for uri in published[url]:
                    records.setdefault(uri, []).append(url)
                if not force:
                    continue
            self.data_store.delete(url)
            for side in manifest_urls(url):  # the shard's manifest goes with it
                self.data_store.delete(side)
        if records and call is not None:
            n = sum(1 for u in unused if u in published and self.data_store.owns(u))
            named = "; ".join(f"{uri} ({len(us)} file(s))" for uri, us in records.items())
            if force:
                msg = (
                    f"{call} with force=True deleted {n} shard file(s) that published records point to: {named}. "
                    "Those records no longer load; promote the entry again to publish data that does"
                )
            else:
                msg = (
                    f"{call} kept {n} shard file(s) that published records still point to: {named}. Those records "
                    "keep loading; pass force=True to delete the files anyway (which breaks those records)"
                )
            warnings.warn(PublishedDataWarning(msg, records=records, deleted=force), stacklevel=stacklevel)
        return left

    def published_urls(self, urls: Iterable[str] | None = None) -> dict[str, list[str]]:
        """The shard URLs this index's published records point to: URL -> the at:// URIs of the records.

        Read from what each promotion recorded (keep mode: the entry's own URLs; copy mode: the
        copies). With ``urls``, only those of them. Overwrites and deletes keep these files, and
        copies never write over them.
        """
        wanted = set(urls) if urls is not None else None
        out: dict[str, list[str]] = {}
        for key, value in self.provider.list_state("published:").items():
            uri = value.get("entry_uri") or key
            for url in value.get("data_urls") or []:
                if (wanted is None or url in wanted) and uri not in out.setdefault(url, []):
                    out[url].append(uri)
        return out

    def _referenced(self, urls: list[str]) -> set[str]:
        """Those of ``urls`` that an entry or a published record of this index points to."""
        return set(self.provider.urls_in_use(urls)) | set(self.published_urls(urls))

    def _resolve_existing(
        self, existing: dict[str, Any] | None, cid: str, overwrite: bool
    ) -> IndexEntry | None:
        """The existing entry when it holds exactly this content; raise when it holds other content."""
        if existing is None or overwrite:
            return None
        if existing["cid"] == cid:
            return IndexEntry.from_row(existing, self)
        raise EntryConflictError(
            f"an entry named {existing['name']!r} already exists with different content "
            f"(cid {existing['cid']}, new {cid}); pass overwrite=True to replace it, or choose another name"
        )

    @staticmethod
    def _shard_row(info: ShardInfo, entry: str) -> dict[str, Any]:
        return {
            "url": info.url,
            "entry": entry,
            "checksum": info.checksum,
            "size": info.size,
            "num_samples": info.num_samples,
            "offsets": info.index_blob(),
        }

    @staticmethod
    def _entry_cid(schema: Schema, infos: list[ShardInfo], n: int) -> str:
        return cid_for({"schema": schema.content_cid(), "shards": [i.checksum for i in infos], "samples": n})

    @staticmethod
    def _check_tags(tags: Any) -> list[str]:
        if tags is None:
            return []
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise InvalidArgumentError(
                f"tags must be a list of strings, e.g. ['features', 'embeddings'], not {tags!r}"
            )
        return list(tags)

    def insert_dataset(
        self,
        ds: Dataset,
        *,
        name: str,
        schema_ref: str | None = None,
        data_store: DataStore | None = None,
        copy: bool = False,
        prefix: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
        force: bool = False,
        progress: ProgressLike = True,
    ) -> IndexEntry:
        """Index shards that already exist (checksums and offsets computed in one pass each).

        With ``copy=True`` the shards are first copied into this index's data store
        (streamed, verified; a file already there is never replaced); ``data_store=`` copies them
        into that store instead. ``schema_ref`` names a stored schema the data must fit (see
        :meth:`write`). ``prefix`` is accepted for atdata compatibility and ignored. ``overwrite``
        and ``force`` work as in :meth:`write`.
        """
        check_dataset_name(name)
        tags = self._check_tags(tags)
        if ds._ops:
            raise InvalidArgumentError(
                f"insert_dataset({name!r}) indexes shards as they are, but this dataset has filter()/map(): "
                "use index.write(ds, name=...) to write the transformed samples"
            )
        infos = [ds.shard_info(u) for u in ds.urls]
        n = sum(i.num_samples for i in infos)
        if n == 0:
            raise InvalidArgumentError(f"insert_dataset({name!r}): the shards hold no samples")
        first = ds.head(1)[0]
        if isinstance(first, DictSample):
            schema = _infer_schema(name, first)
        else:
            st = type(first)
            observer = HintObserver([f.name for f in fields_of(st) if f.type.kind == "ndarray"])
            observer.observe(first)
            schema = Schema.from_type(st).with_hints(observer.dtypes, observer.shapes)
        chosen, is_new = self._schema_for(schema, schema_ref, f"insert_dataset({name!r})")
        cid = self._entry_cid(chosen, infos, n)
        existing = self.provider.get_entry(name)
        same = self._resolve_existing(existing, cid, overwrite)
        if same is not None:
            return same
        if copy or data_store is not None:
            dest = data_store if data_store is not None else self.data_store
            self.remember_store(dest)
            infos = copy_shards(
                infos,
                dest,
                name,
                source_options=ds.storage_options,
                progress=progress,
                in_use=self._referenced,
            )
        if is_new:
            self._put_schema(chosen)
        return self._commit_entry(
            name,
            chosen.ref,
            infos,
            n,
            cid,
            description,
            tags,
            license,
            metadata,
            overwrite,
            existing,
            force=force,
            call="index.insert_dataset",
        )

    def add_entry(
        self,
        ds: Dataset,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> IndexEntry:
        """atdata's older name for :meth:`insert_dataset` (in place, no copy).

        A ``schema_ref`` the data does not fit raises before anything is indexed, instead of being
        recorded untrue (atdata records it as given).
        """
        return self.insert_dataset(ds, name=name, schema_ref=schema_ref, metadata=metadata)

    def remember_store(self, store: DataStore) -> None:
        """Use ``store``'s credentials for its URLs when reading (copies register their target)."""
        if store is not self.data_store and store not in self._stores:
            self._stores.append(store)

    def copy_entry(self, name: str, *, to: DataStore, progress: ProgressLike = True) -> IndexEntry:
        """Copy an entry's shards to another store and point the entry at the copies.

        Streaming, verified by checksum, resumable (shards already there with the right checksum
        are skipped); the originals stay where they were. The entry's CID does not change. A file
        already at a target name is never replaced: the shard gets a content-addressed name instead.
        """
        entry = self.get_entry_by_name(name)
        ds = self.dataset(entry)
        infos = [ds.shard_info(u) for u in entry.data_urls]
        self.remember_store(to)
        copied = copy_shards(
            infos, to, name, source_options=ds.storage_options, progress=progress, in_use=self._referenced
        )
        urls = [c.url for c in copied]
        if urls != entry.data_urls:
            self.provider.put_shards([self._shard_row(c, name) for c in copied])
            self.provider.update_entry(name, data_urls=urls)
        return self.get_entry_by_name(name)

    # ------------------------------------------------------------------ reading entries
    def get_entry_by_name(self, name: str) -> IndexEntry:
        """The entry called ``name``. Raises ``EntryNotFoundError`` (a ``KeyError``)."""
        row = self.provider.get_entry(name)
        if row is None:
            raise EntryNotFoundError(f"no dataset named {name!r} in {self.provider!r}")
        return IndexEntry.from_row(row, self)

    def get_entry(self, cid: str) -> IndexEntry:
        """The entry with content CID ``cid`` (the newest if several names share it)."""
        row = self.provider.get_entry_by_cid(cid)
        if row is None:
            raise EntryNotFoundError(f"no dataset with cid {cid!r} in {self.provider!r}")
        return IndexEntry.from_row(row, self)

    def list_entries(self) -> list[IndexEntry]:
        """Every entry, newest first."""
        rows, _ = self.provider.search(limit=None)
        return [IndexEntry.from_row(r, self) for r in rows]

    @property
    def entries(self) -> list[IndexEntry]:
        return self.list_entries()

    all_entries = entries  # atdata's older name

    def list_datasets(self, repo: str | None = None) -> list[IndexEntry]:
        """Entries of this index (``repo="local"``), of one named repository, or (``None``) of all.

        ``repo="_atmosphere"`` lists the attached account's published datasets, and a DID
        (``"did:plc:..."``) another account's (one request per dataset).
        """
        if repo == "_atmosphere":
            return promotion.list_published_entries(self)
        if repo is not None and repo.startswith("did:"):
            return promotion.list_published_entries(self, repo)
        return [e for _, idx in self._repos_for(repo) for e in idx.list_entries()]

    @property
    def datasets(self) -> list[IndexEntry]:
        """Entries of this index and of every named repository."""
        return self.list_datasets()

    def __len__(self) -> int:
        return self.provider.search(limit=0)[1]

    def search(
        self,
        text: str | None = None,
        tags: list[str] | None = None,
        schema_ref: str | None = None,
        repo: str | None = None,
        limit: int | None = 50,
        include_atmosphere: bool = True,
        *,
        scope: str | None = None,
        cursor: str | None = None,
        schema: str | None = None,
        published: bool | None = None,
        sort: str = "created_at",
        descending: bool = True,
        offset: int = 0,
    ) -> SearchPage:
        """Datasets matching ``text``, all ``tags`` and a schema: in this index, across publishers, or both.

        Args:
            text: Words to find. Locally: a substring of name, description or tags
                (case-insensitive). On the network: the AppView's full-text search over the same.
            tags: Tags that must all be present.
            schema_ref: A schema reference (atdata's name); ``schema=`` also takes a schema name.
            repo: Locally: ``"local"`` or the name of a mounted repository (others match nothing
                here). On the network: a publisher's DID or handle.
            limit: Results at most (the AppView answers at most 100 a page). ``None``: every
                local match.
            include_atmosphere: atdata's switch: ``False`` keeps the default scope local.
            scope: ``"local"`` (this index), ``"network"`` (every publisher, through the AppView:
                required, so :class:`~atdata_lab.errors.AppViewUnavailableError` if it cannot be
                reached, except with ``repo=``, when that publisher's PDS is read instead) or
                ``"all"`` (both, merged, repeats dropped; an unavailable AppView only adds a
                warning). Default, as in atdata: ``"all"`` when an AppView is configured (the
                attached atmosphere's, else ``$ATDATA_APPVIEW_URL``) and ``include_atmosphere``,
                else ``"local"``.
            cursor: The network page to continue from (``page.cursor`` of the previous page).
            schema, published, sort, descending, offset: Local filters and paging (provider side;
                ``sort`` is a column such as ``"created_at"`` or ``"name"``).

        Returns:
            A :class:`SearchPage`: the local :class:`IndexEntry` matches as a list (paged by
            ``offset``/``limit``, counted by ``total``), and atdata's fields for every hit:
            ``items`` (:class:`~atdata_lab.search.SearchResult`, ``source`` ``"local"``,
            ``"atmosphere"`` or ``"pds"``), ``cursor``, ``total_hint``, ``source``, ``warnings``.

        Raises:
            AppViewRequiredError: ``scope="network"`` and no AppView is configured.
            AppViewUnavailableError: ``scope="network"`` and it cannot be reached (see ``repo``).
        """
        if schema is not None and schema_ref is not None and schema != schema_ref:
            raise InvalidArgumentError(f"schema={schema!r} and schema_ref={schema_ref!r}: give one of them")
        schema = schema if schema is not None else schema_ref
        if scope is None:
            scope = "all" if include_atmosphere and self._network_client() is not None else "local"
        if scope not in ("local", "network", "all"):
            raise InvalidArgumentError(f"scope={scope!r}: give 'local', 'network' or 'all'")
        if scope == "local":
            return self._search_local(text, tags, schema, repo, published, sort, descending, offset, limit)
        client = self._network_client()
        net_limit = limit if limit is not None else 100
        if scope == "network":
            if client is None:
                raise AppViewRequiredError("index.search(scope='network')")
            found = AppViewSearchBackend(client).search(
                text=text, tags=tags, schema_ref=schema, repo=repo, limit=net_limit, cursor=cursor
            )
            return SearchPage(
                [],
                0,
                offset,
                limit,
                items=found.items,
                cursor=found.cursor,
                total_hint=found.total_hint,
                source=found.source,
                warnings=found.warnings,
            )
        local = self._search_local(text, tags, schema, repo, published, sort, descending, offset, limit)
        pages = [SearchResults(items=local.items, total_hint=local.total, source="local")]
        warnings: list[str] = []
        if client is None:
            warnings.append(
                "no AppView is configured, so these are local results only: pass appview= to the "
                "Atmosphere or set ATDATA_APPVIEW_URL"
            )
        else:
            try:
                pages.append(
                    AppViewSearchBackend(client).search(
                        text=text, tags=tags, schema_ref=schema, repo=repo, limit=net_limit
                    )
                )
            except AppViewError as e:
                logger("atdata_lab.search").warning("searching local entries only: %s", e)
                warnings.append(f"{e}; these are local results only")
        merged = merge_results(pages, net_limit)
        return SearchPage(
            local,
            local.total,
            offset,
            limit,
            items=merged.items,
            total_hint=merged.total_hint,
            source=merged.source,
            warnings=warnings + merged.warnings,
        )

    def _search_local(
        self,
        text: str | None,
        tags: list[str] | None,
        schema: str | None,
        repo: str | None,
        published: bool | None,
        sort: str,
        descending: bool,
        offset: int,
        limit: int | None,
    ) -> SearchPage:
        """This index's (or a mounted repository's) matches: filtered, sorted and paged by the provider."""
        target: Index | None = self
        if repo not in (None, "local"):
            target = self._repo_index(repo) if repo in self._repos else None
        if target is None:  # a publisher's DID or handle: no local entry is theirs
            return SearchPage([], 0, offset, limit)
        rows, total = target.provider.search(
            text=text,
            tags=tags,
            schema=schema,
            published=published,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )
        return SearchPage((IndexEntry.from_row(r, target) for r in rows), total, offset, limit)

    def _network_client(self) -> Any:
        """The client that reaches the AppView: the attached atmosphere when it has one, else an
        anonymous client for ``$ATDATA_APPVIEW_URL`` (on the attached account's PDS, else
        ``$ATDATA_PDS_URL``), kept while those stay the same; None when no AppView is named."""
        atm = self.atmosphere
        if atm is not None and getattr(atm, "has_appview", False):
            return atm
        from .atmosphere._appview import appview_from_env  # lazily: the transport loads httpx

        appview = appview_from_env()
        if appview is None:
            return None
        pds = getattr(atm, "pds_url", None) or os.environ.get("ATDATA_PDS_URL") or "https://bsky.social"
        key = (pds, appview)
        cached = getattr(self, "_appview_reader", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        from .atmosphere import Atmosphere  # lazily: the client (httpx, the atproto SDK) loads on first use

        client = Atmosphere(pds, appview=appview, plc_url=getattr(atm, "_plc_url", None))
        if cached is not None:
            cached[1].close()
        self._appview_reader = (key, client)
        return client

    def get_shards(self, entry: IndexEntry | str) -> list[dict[str, Any]]:
        """An entry's shards in order: ``url``, ``size``, ``checksum``, ``num_samples`` (from the
        index's shard rows; ``size``/``num_samples`` are None for a shard the index has no row for)."""
        if isinstance(entry, str):
            entry = self.get_entry_by_name(entry)
        rows = self.provider.get_shards(entry.data_urls)
        out = []
        for i, url in enumerate(entry.data_urls):
            r = rows.get(url) or {}
            checksum = r.get("checksum") or (
                entry.shard_checksums[i] if i < len(entry.shard_checksums) else None
            )
            out.append(
                {"url": url, "size": r.get("size"), "checksum": checksum, "num_samples": r.get("num_samples")}
            )
        return out

    def delete_entry(self, name: str, *, delete_data: bool = False, force: bool = False) -> IndexEntry:
        """Remove an entry; with ``delete_data=True`` also its shards (only those in this index's store).

        Shards another entry uses are kept, and so are shards a published record of this index
        points to (a :class:`~atdata_lab.errors.PublishedDataWarning` names the record, which keeps
        loading). ``force=True`` deletes those too; the warning names the records that no longer load.
        """
        row = self.provider.delete_entry(name)
        if row is None:
            raise EntryNotFoundError(f"no dataset named {name!r} to delete")
        if delete_data:
            self._delete_unused(
                list(row["data_urls"]), force=force, call=f"index.delete_entry({name!r}, delete_data=True)"
            )
        return IndexEntry.from_row(row)

    def generation(self) -> int:
        """Grows whenever this index changes (in any kernel): cheap change detection."""
        return self.provider.generation()

    def to_pandas(self):
        """Every entry as a DataFrame row."""
        import pandas as pd

        rows, _ = self.provider.search(limit=None)
        return pd.DataFrame(
            rows,
            columns=[
                "name",
                "schema_ref",
                "num_samples",
                "num_shards",
                "size_bytes",
                "created_at",
                "tags",
                "license",
                "published_uri",
                "cid",
                "description",
            ],
        )

    def dataset(self, entry: IndexEntry | str, sample_type: type | None = None) -> Dataset:
        """An entry's data as a Dataset, with the index's offset indexes for random access.

        The shards' sample counts are read now; a shard's offset index is fetched from the index
        when that shard is first used for random access (``ds[k]``, shuffling, ``get``), so a
        Dataset over 100k shards holds only what it reads."""
        if isinstance(entry, str):
            entry = self.get_entry_by_name(entry)
        if sample_type is None:
            try:
                sample_type = self.get_schema_type(entry.schema_ref)
            except (SchemaNotFoundError, ValueError):
                sample_type = DictSample
        ds: Dataset[Any] = Dataset(
            entry.data_urls, sample_type=sample_type, storage_options=self._options_for(entry.data_urls)
        )
        rows = self.provider.get_shard_counts(entry.data_urls)
        known = []
        for url in entry.data_urls:
            r = rows.get(url)
            if r is not None and r.get("has_offsets"):
                known.append(ShardRow(url, r["checksum"], r["size"], r["num_samples"]))
        ds._remember_rows(known, ShardOffsets(self.provider))
        return ds

    def build_manifests(
        self, entry: IndexEntry | str, *, progress: ProgressLike = True
    ) -> dict[str, list[str]]:
        """Write the manifests of an entry's shards that have none (atdata's ``.manifest.json`` and
        ``.manifest.parquet`` beside each), so ``index.dataset(name).query(where=...)`` works.

        Each shard is read once, streaming, and checked against the checksum its entry records on
        the way. Resumable: shards that already have a manifest are skipped, so after an
        interruption the same call finishes the rest. The manifest's rows are published before its
        header, so a header that can be seen always has its rows.

        Returns:
            ``{"built": [shard urls], "skipped": [shard urls that had a manifest]}``.

        Raises:
            InvalidArgumentError: A shard without a manifest is in no data store of this index and
                not on this machine (nothing is written there; nothing at all is built).
            ShardError: A shard's bytes do not match its checksum (its manifest is not written).
        """
        if isinstance(entry, str):
            entry = self.get_entry_by_name(entry)
        ds = self.dataset(entry)
        sample_type = ds.sample_type
        try:
            version = parse_schema_ref(entry.schema_ref)[1]
        except ValueError:
            version = "1.0.0"
        todo: list[tuple[int, str, DataStore | None]] = []
        skipped: list[str] = []
        for i, url in enumerate(entry.data_urls):
            store = next((st for st in (self.data_store, *self._stores) if st.owns(url)), None)
            json_url = manifest_urls(url)[0]
            if store is None and not is_local(url):
                raise InvalidArgumentError(
                    f"cannot write a manifest beside {url}: it is in no data store of this index; copy the "
                    "entry into one first (index.copy_entry(name, to=store)), then build its manifests"
                )
            there = store.exists(json_url) if store is not None else os.path.exists(local_path(json_url))
            if there:
                skipped.append(url)
            else:
                todo.append((i, url, store))
        report = resolve_progress(progress)
        built: list[str] = []
        for n, (i, url, store) in enumerate(todo):
            report(ProgressEvent("manifests", n, len(todo), "shards", message=shard_label(url)))
            checksum = entry.shard_checksums[i] if i < len(entry.shard_checksums) else None
            m = manifest_of_shard(
                url,
                sample_type,
                storage_options=ds.storage_options,
                checksum=checksum,
                schema_version=version,
            )
            header, rows = m.to_bytes()
            json_url, parquet_url = manifest_urls(url)
            _publish_beside(store, parquet_url, rows, orphan_ok=True)  # rows first: a seen header has rows
            _publish_beside(store, json_url, header, orphan_ok=False)
            built.append(url)
        report(ProgressEvent("manifests", len(todo), len(todo), "shards", finished=True))
        return {"built": built, "skipped": skipped}

    def _options_for(self, urls: list[str]) -> dict[str, Any]:
        """fsspec options for reading ``urls``: the data store's when it owns them, else the
        environment's (for s3:// URLs: AWS_* variables and AWS_ENDPOINT_URL)."""
        for store in (self.data_store, *self._stores):
            if urls and store.owns(urls[0]):
                return store.storage_options
        if urls and urls[0].startswith("s3://") and os.environ.get("AWS_ENDPOINT_URL"):
            return {"client_kwargs": {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}}
        return {}

    # ------------------------------------------------------------------ schemas
    def _choose_schema(self, schema: Schema) -> tuple[Schema, bool]:
        """The stored schema written data should use (identical or conforming), else a new version.

        Returns ``(schema, is_new)``; nothing is stored here (a write that fails stores nothing).
        """
        rows = self.provider.list_schemas(schema.name)
        cid = schema.content_cid()
        stored = [Schema.from_record(r["record"]) for r in rows]
        stored.sort(key=lambda s: version_key(s.version), reverse=True)
        for s in stored:
            if s.content_cid() == cid:
                return s, False
        for s in stored:
            if _conforms(schema, s):
                return s, False
        if not stored:
            return schema.with_version("1.0.0"), True
        version = schema_diff(stored[0], schema).next_version
        taken = {s.version for s in stored}
        while version in taken:
            version = bump_version(version, "patch")
        return schema.with_version(version), True

    def _schema_for(self, schema: Schema, schema_ref: str | None, call: str) -> tuple[Schema, bool]:
        """:meth:`_choose_schema`, or the stored ``schema_ref`` when given and the data fits it."""
        if schema_ref is None:
            return self._choose_schema(schema)
        stored = Schema.from_record(self.get_schema(schema_ref))
        if stored.content_cid() == schema.content_cid() or _conforms(schema, stored):
            return stored, False
        raise InvalidArgumentError(
            f"{call}: the data does not fit schema_ref={schema_ref!r} ({_diff_text(stored, schema)}); "
            "leave schema_ref out to store the data's own schema"
        )

    def _put_schema(self, schema: Schema) -> None:
        rec = schema.to_record()
        row = {
            "ref": schema.ref,
            "name": schema.name,
            "version": schema.version,
            "content_cid": rec["contentCid"],
            "record": rec,
            "created_at": rec["createdAt"],
        }
        if not self.provider.put_schema(row):
            existing = self.provider.get_schema(schema.ref)
            if existing and existing["content_cid"] != rec["contentCid"]:
                self._raise_conflict(Schema.from_record(existing["record"]), schema)

    def _raise_conflict(self, old: Schema, new: Schema) -> None:
        d = schema_diff(old, new)
        changed = _diff_text(old, new)
        raise SchemaConflictError(
            f"schema {old.name}@{old.version} already exists with different fields: {changed}. "
            f"Versions are immutable: publish this one as version {d.next_version!r}",
            diff=d,
            suggested_version=d.next_version,
        )

    def publish_schema(
        self, sample_type: type, *, version: str | None = None, description: str | None = None
    ) -> str:
        """Store a sample type's schema in this index; return its ref.

        Args:
            version: The version to store it as. ``None``: reuse an identical stored version,
                else the next version ``schema_diff`` suggests (``1.0.0`` for a new name).

        Raises:
            SchemaConflictError: ``version`` exists with different fields (a ``ValueError``
                naming the fields and the version to use instead).
        """
        schema = Schema.from_type(sample_type, description=description)
        rows = self.provider.list_schemas(schema.name)
        stored = sorted(
            (Schema.from_record(r["record"]) for r in rows),
            key=lambda s: version_key(s.version),
            reverse=True,
        )
        if stored:  # a plain NDArray field takes the dtype the stored schema recorded from data
            base = next((s for s in stored if s.version == version), stored[0])
            known = {f.name: f.type for f in base.fields if f.type.kind == "ndarray"}
            schema = schema.with_hints(
                {k: t.dtype for k, t in known.items()}, {k: t.shape for k, t in known.items()}
            )
        if version is not None:
            for s in stored:
                if s.version == version:
                    if (
                        s.content_cid() == schema.content_cid()
                        or _conforms(s, schema)
                        or _conforms(schema, s)
                    ):
                        return s.ref
                    self._raise_conflict(s, schema.with_version(version))
            new = schema.with_version(version)
        else:
            for s in stored:
                if s.content_cid() == schema.content_cid() or _conforms(schema, s) or _conforms(s, schema):
                    return s.ref
            new = schema.with_version("1.0.0" if not stored else schema_diff(stored[0], schema).next_version)
        self._put_schema(new)
        return new.ref

    def get_schema(self, ref: str) -> dict[str, Any]:
        """The local schema record for ``ref``. Raises ``SchemaNotFoundError`` (a ``KeyError``)."""
        row = self.provider.get_schema(ref)
        if row is None:
            try:
                name, version = parse_schema_ref(ref)
            except ValueError:
                raise SchemaNotFoundError(f"no schema {ref!r} in this index") from None
            row = self.provider.get_schema(schema_ref(name, version))  # e.g. atdata's local:// form
            if row is None:
                raise SchemaNotFoundError(
                    f"no schema {ref!r} in this index; store it with index.publish_schema(SampleType)"
                )
        return dict(row["record"])

    def list_schemas(self) -> list[dict[str, Any]]:
        """Every stored schema record (each with its ``$ref``)."""
        out = []
        for r in self.provider.list_schemas():
            rec = dict(r["record"])
            rec["$ref"] = r["ref"]
            if r.get("published_uri"):
                rec["publishedUri"] = r["published_uri"]
            out.append(rec)
        return out

    def get_schema_type(self, ref: str, *, register: bool = True) -> type:
        """A working ``@packable`` type generated from a stored schema; with ``register`` (the
        default) it is also ``index.types.<Name>``."""
        t = Schema.from_record(self.get_schema(ref)).to_type()
        if register:
            setattr(self._types, t.__name__, t)
        return t

    decode_schema = get_schema_type
    load_schema = get_schema_type  # atdata's older name

    def decode_schema_as(self, ref: str, type_hint: type) -> type:
        """atdata's name: :meth:`get_schema_type`; ``type_hint`` is for the IDE only."""
        del type_hint
        return self.get_schema_type(ref)

    def get_schema_record(self, ref: str) -> dict[str, Any]:
        """atdata's name for :meth:`get_schema` (the record, as a dict)."""
        return self.get_schema(ref)

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """Every stored schema record (see :meth:`list_schemas`)."""
        return self.list_schemas()

    @property
    def types(self) -> SimpleNamespace:
        """The types :meth:`get_schema_type` generated, by name: ``index.types.MySample``."""
        return self._types

    def resolve_schema(self, obj: Any) -> Schema:
        """A Schema from a ref, an at:// URI, an IndexEntry, a record, or a type (through
        :func:`atdata_lab.schema_diff.resolve_schema`, with this index)."""
        return resolve_schema(obj, self).schema

    # ------------------------------------------------------------------ labels
    @property
    def repos(self) -> dict[str, Repository]:
        """Every repository of this index: ``"local"`` (this index) and the named ones."""
        return {"local": Repository(self.provider, self.data_store), **self._repos}

    def _repo_index(self, name: str) -> Index:
        """The named repository as an Index (its data store, else this index's)."""
        if name not in self._repo_indexes:
            repo = self._repos[name]
            store = repo.data_store if repo.data_store is not None else self.data_store
            self._repo_indexes[name] = Index(repo.provider, data_store=store, atmosphere=self.atmosphere)
        return self._repo_indexes[name]

    def _repos_for(self, repo: str | None) -> list[tuple[str, Index]]:
        """``(prefix, index)`` pairs: this index (prefix ``""``) and the named repositories."""
        if repo is None:
            return [("", self)] + [(f"{n}/", self._repo_index(n)) for n in self._repos]
        if repo == "local":
            return [("", self)]
        if repo in self._repos:
            return [(f"{repo}/", self._repo_index(repo))]
        known = ", ".join(repr(n) for n in ["local", *self._repos])
        raise InvalidArgumentError(f"no repository named {repo!r} in this index: use one of {known}, or None")

    def _split_repo(self, name: str) -> tuple[Index, str]:
        """``"lab/mnist"`` -> (repository ``lab``, ``"mnist"``) when ``lab`` is mounted."""
        repo, sep, rest = name.partition("/")
        if sep and repo in self._repos:
            return self._repo_index(repo), rest
        return self, name

    def label(
        self, name: str, cid: str, *, version: str | None = None, description: str | None = None
    ) -> None:
        """Point the label ``name`` (at ``version``) at the entry with content CID ``cid``.

        Labelling again with the same name and version moves the label.
        """
        target, name = self._split_repo(name)
        if target is not self:
            return target.label(name, cid, version=version, description=description)
        check_dataset_name(name)
        self.get_entry(cid)  # EntryNotFoundError if no entry has it
        self.provider.set_state(
            f"label:{name}@{version or ''}",
            {"name": name, "cid": cid, "version": version, "description": description, "created_at": _now()},
        )

    def _label_rows(self) -> list[dict[str, Any]]:
        rows = list(self.provider.list_state("label:").values())
        return sorted(rows, key=lambda r: r["created_at"], reverse=True)

    def get_label(self, name: str, version: str | None = None) -> IndexEntry:
        """The entry the label ``name`` points at (``version=None``: the label made last).

        ``@handle/name`` resolves a published label through the attached atmosphere.
        Raises ``EntryNotFoundError`` (a ``KeyError``).
        """
        if name.startswith("@"):
            return self.get_dataset(name if version is None else f"{name}@{version}")
        target, name = self._split_repo(name)
        if target is not self:
            return target.get_label(name, version)
        for row in self._label_rows():
            if row["name"] == name and (version is None or row["version"] == version):
                try:
                    return self.get_entry(row["cid"])
                except EntryNotFoundError:
                    raise EntryNotFoundError(
                        f"label {name!r} points at {row['cid']}, which no entry has any more: "
                        f"label it again with index.label({name!r}, entry.cid)"
                    ) from None
        at = f" at version {version!r}" if version is not None else ""
        raise EntryNotFoundError(f"no label {name!r}{at}; make one with index.label({name!r}, entry.cid)")

    def list_labels(self, repo: str | None = None) -> list[tuple[str, str, str | None]]:
        """Every label as ``(name, cid, version)``, newest first."""
        return [
            (prefix + r["name"], r["cid"], r["version"])
            for prefix, idx in self._repos_for(repo)
            for r in idx._label_rows()
        ]

    @property
    def labels(self) -> list[tuple[str, str, str | None]]:
        """Every label as ``(name, cid, version)`` (see :meth:`list_labels`)."""
        return self.list_labels()

    # ------------------------------------------------------------------ lenses
    def store_lens(
        self,
        lens_obj: Lens,
        *,
        name: str,
        version: str | None = None,
        description: str | None = None,
        source_schema: str | None = None,
        view_schema: str | None = None,
    ) -> str:
        """Record a lens (its getter and putter by import path) under ``name``; returns
        ``atdata://local/lens/{name}@{version}``.

        ``version=None`` takes the next patch version (``1.0.0`` first). The source and view
        schema names default to the lens's types' names. Loading imports the functions, so they
        must live at module level of an importable module (or this notebook, for this kernel).
        """
        if not isinstance(lens_obj, Lens):
            raise InvalidTypeError(f"store_lens takes a Lens (made with @atdata.lens), not {lens_obj!r}")
        check_dataset_name(name)
        if version is None:
            mine = [r["version"] for r in self.list_lenses() if r["name"] == name]
            version = bump_version(max(mine, key=version_key), "patch") if mine else "1.0.0"
        if source_schema is None and lens_obj.source_type is not None:
            source_schema = lens_obj.source_type.__name__
        if view_schema is None and lens_obj.view_type is not None:
            view_schema = lens_obj.view_type.__name__
        putter = lens_obj._putter
        ref = f"{_LENS_REF_PREFIX}{name}@{version}"
        record = {
            "$ref": ref,
            "name": name,
            "version": version,
            "description": description,
            "source_schema": source_schema,
            "view_schema": view_schema,
            "getter": _import_path(lens_obj._getter, "getter"),
            "putter": _import_path(putter, "putter") if putter is not None else None,
            "created_at": _now(),
        }
        self.provider.set_state(f"lens:{name}@{version}", record)
        return ref

    def get_lens(self, ref: str) -> dict[str, Any]:
        """The stored lens record for ``atdata://local/lens/{name}@{version}`` (or ``name@version``,
        or ``name`` for the newest version). Raises ``NotFoundError`` (a ``KeyError``)."""
        rest = ref[len(_LENS_REF_PREFIX) :] if ref.startswith(_LENS_REF_PREFIX) else ref
        name, sep, version = rest.rpartition("@")
        if not sep:
            mine = [r for r in self.list_lenses() if r["name"] == rest]
            if mine:
                return max(mine, key=lambda r: version_key(r["version"]))
        else:
            row = self.provider.get_state(f"lens:{name}@{version}")
            if row is not None:
                return dict(row)
        raise NotFoundError(f"no lens {ref!r} in this index; store one with index.store_lens(lens, name=...)")

    def load_lens(self, ref: str, *, source_type: type | None = None, view_type: type | None = None) -> Lens:
        """A working lens from a stored record (its functions imported), registered in the
        :class:`~atdata_lab.lens.LensNetwork` when its types are known."""
        rec = self.get_lens(ref)
        get = _import_object(rec["getter"], ref)
        if isinstance(get, Lens):  # the module attribute is the @lens-decorated lens
            get = get._getter
        put = _import_object(rec["putter"], ref) if rec.get("putter") else None
        loaded: Lens = Lens(get, put, source=source_type, view=view_type)
        if loaded.source_type is not None and loaded.view_type is not None:
            LensNetwork().register(loaded)
        return loaded

    def list_lenses(self) -> list[dict[str, Any]]:
        """Every stored lens record, newest first."""
        rows = [dict(r) for r in self.provider.list_state("lens:").values()]
        return sorted(rows, key=lambda r: r["created_at"], reverse=True)

    @property
    def lenses(self) -> list[dict[str, Any]]:
        """Every stored lens record (see :meth:`list_lenses`)."""
        return self.list_lenses()

    def find_lenses(self, source_schema: str, view_schema: str | None = None) -> list[dict[str, Any]]:
        """Stored lens records from schema ``source_schema`` (and to ``view_schema``), by name."""
        return [
            r
            for r in self.list_lenses()
            if r["source_schema"] == source_schema
            and (view_schema is None or r["view_schema"] == view_schema)
        ]

    # ------------------------------------------------------------------ promotion
    def plan_promotion(
        self,
        entry_name: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        copy_to: Any = None,
        version: str | None = None,
        clear: list[str] | tuple[str, ...] = (),
        downgrade: bool = False,
    ):
        """Decide how to publish an entry, without writing anything.

        Returns a :class:`~atdata_lab.promotion.PromotionPlan`: the schema decision (reuse,
        publish or conflict), the exact records, the data action, a field-level diff of every
        published record it rewrites, and the cost. All validation happens here.

        A dataset already published under ``name`` is the starting point: ``description``,
        ``tags``, ``license``, ``metadata`` and the storage are kept unless given here. An
        unchanged entry writes and uploads nothing. A different entry published under the same
        name becomes the new version of that name (``@handle/name`` then resolves to it).

        Args:
            copy_to: ``None``: the published storage (the same shards keep it; new shards go the
                same way), or the current URLs when nothing is published yet; ``"keep"``: the
                current URLs; a data store (``LocalDiskStore``, ``S3DataStore``): copy there;
                ``"blobs"``: upload as PDS blobs.
            version: The label's version (``@handle/name@version`` selects it).
            clear: Published fields to remove on purpose, e.g. ``clear=["license"]``.
            downgrade: Allow published storage that others can load to become local file paths,
                or checksums to be dropped.

        Raises:
            KeyError: no such entry, or its schema is missing.
            ValueError: no atmosphere attached, no data URLs, or invalid name, description,
                tags, license or metadata (the message names the field and the limit).
            PromotionDowngradeError: the promotion would remove or weaken something published
                without ``clear=``/``downgrade=True`` saying so (a ``ValueError`` naming each field).
        """
        return promotion.plan_promotion(
            self,
            entry_name,
            name=name,
            description=description,
            tags=tags,
            license=license,
            metadata=metadata,
            copy_to=copy_to,
            label_version=version,
            clear=clear,
            downgrade=downgrade,
        )

    def promote_entry(self, entry_name: str, *, progress: ProgressLike = True, **options: Any) -> str:
        """Publish an entry to the attached atmosphere: plan, one atomic write. Returns its at:// URI.

        Options are those of :meth:`plan_promotion`. Promoting an unchanged, already-promoted
        entry returns the existing URI without writing.
        """
        return self.plan_promotion(entry_name, **options).execute(progress=progress).at_uri

    def promote_dataset(
        self,
        dataset: Dataset,
        *,
        name: str,
        sample_type: type | None = None,
        schema_version: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
        metadata: dict[str, Any] | None = None,
        copy_to: Any = None,
        progress: ProgressLike = True,
    ) -> str:
        """Publish a Dataset: index it, copy the data to ``copy_to`` (default: this index's data
        store) before any record is written, then promote. Returns the at:// URI.

        When an entry named ``name`` already exists: the same content reuses it; other content
        (e.g. part of its shards) is indexed under ``{name}-v2`` (``-v3``...: the first free name,
        or the one that already holds this content) with a warning, never replacing the entry, and
        is published as ``name``.

        Args:
            sample_type: Read (and describe) the data as this type (``dataset.as_type``); one that
                needs a lens raises, as the shards hold the other type.
            schema_version: Store the schema under this version first (a version that exists
                with other fields raises :class:`~atdata_lab.errors.SchemaConflictError`). ``None``:
                an identical stored schema is reused, else the next version. Unlike atdata, the
                label's version is not set from it.
        """
        if sample_type is not None and sample_type is not dataset.sample_type:
            dataset = dataset.as_type(sample_type)
        schema_ref = None
        if schema_version is not None:
            if dataset.sample_type is DictSample:
                raise InvalidArgumentError(
                    "promote_dataset(schema_version=...) needs a typed dataset: pass sample_type= "
                    "or read it as Dataset[T](...)"
                )
            schema_ref = self.publish_schema(dataset.sample_type, version=schema_version)
        local_name = name
        for n in range(2, 1000):
            try:
                self.insert_dataset(
                    dataset,
                    name=local_name,
                    schema_ref=schema_ref,
                    description=description,
                    tags=tags,
                    license=license,
                    metadata=metadata,
                    progress=progress,
                )
                break
            except EntryConflictError:
                local_name = f"{name}-v{n}"
        else:
            raise EntryConflictError(
                f"promote_dataset(name={name!r}): {name!r} and {name}-v2 ... -v999 all hold other data; "
                "delete unused entries with index.delete_entry(...) or promote under another name"
            )
        if local_name != name:
            warnings.warn(
                f"an entry named {name!r} already holds other data, so this dataset is indexed locally as "
                f"{local_name!r} (nothing was replaced) and published as {name!r}",
                AtdataLabWarning,
                stacklevel=2,
            )
        return self.promote_entry(
            local_name,
            name=name,
            description=description,
            tags=tags,
            license=license,
            metadata=metadata,
            copy_to=copy_to if copy_to is not None else (self._promote_copy_to or self.data_store),
            progress=progress,
        )

    def get_dataset(self, ref: str) -> IndexEntry:
        """A dataset's entry by reference: a local name (``"mnist"``, ``"@local/mnist"``,
        ``"lab/mnist"`` in a mounted repository) or a published dataset (``at://...`` or
        ``@handle/name``: name, schema_ref, data_urls, cid, metadata, tags, license, size).

        Raises:
            EntryNotFoundError: No local entry by that name (a ``KeyError``).
        """
        if ref.startswith("at://") or (ref.startswith("@") and not ref.startswith("@local/")):
            return promotion.get_published_entry(self, ref)
        target, name = self._split_repo(ref.removeprefix("@local/"))
        return target.get_entry_by_name(name)

    def published_entry(self, entry: IndexEntry | str, *, name: str | None = None):
        """What the attached account has published as ``name`` (default: the entry's name), as a
        :class:`~atdata_lab.promotion.PublishedEntry` read with one ``getRecord``, or None. Writes nothing."""
        return promotion.read_published(self, entry if isinstance(entry, str) else entry.name, name)

    def published_uri(self, entry: IndexEntry | str, *, did: str | None = None) -> str | None:
        """The at:// URI of ``entry``'s latest publication by ``did`` (default: the attached
        account), from this index's records of its promotions; None if that account has not
        published it. No request."""
        name = entry if isinstance(entry, str) else entry.name
        did = did if did is not None else getattr(self.atmosphere, "did", None)
        if not did:
            return None
        found = promotion.publication_of(self, name, did)
        return found["entry_uri"] if found else None

    def list_published(self) -> dict[str, list[dict[str, Any]]]:
        """The ``entries``, ``schemas`` and ``labels`` records in the attached account's repository."""
        return promotion.list_published(self)

    def verify(self, at_uri: str):
        """Check a published dataset: records present, CIDs, shard checksums, first batch loads."""
        return promotion.verify_published(self, at_uri)

    # ------------------------------------------------------------------ widgets
    def browse(self, **kwargs: Any):
        """Open the index browser widget (needs ``atdata-lab[widgets]``)."""
        from .widgets.index_browser import IndexBrowser

        return IndexBrowser(self, **kwargs)


# ---------------------------------------------------------------------- stored lenses
_LENS_REF_PREFIX = "atdata://local/lens/"


def _import_path(fn: Any, role: str) -> str:
    """``module:qualname`` of a module-level function, or a clear error."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        raise InvalidArgumentError(
            f"the lens {role} {fn!r} cannot be stored: it has no import path (a lambda or a function "
            "defined inside another); define it with def at module level"
        )
    return f"{module}:{qualname}"


def _import_object(path: str, ref: str) -> Any:
    import importlib

    module, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise InvalidArgumentError(
            f"lens {ref!r} names {path}, which does not import here ({e}): "
            f"install or import the module that defines it, then load the lens again"
        ) from None
    return obj


# ---------------------------------------------------------------------- the default index
_default_index: Index | None = None


def _publish_beside(store: DataStore | None, url: str, data: bytes, *, orphan_ok: bool) -> None:
    """Publish a manifest file beside its shard, atomically, never replacing a file silently: a
    rows file left by an interrupted build (``orphan_ok``: its header was never published) is
    replaced; a header someone else published meanwhile is kept."""
    for attempt in range(2):
        sink = store.open_sink(url) if store is not None else FileSink(local_path(url))
        try:
            sink.write(data)
            sink.commit()
            return
        except ShardExistsError:
            if not orphan_ok:
                return  # another build of this shard published its header first: keep that one
            if attempt:
                raise
            if store is not None:
                store.delete(url)
            else:
                Path(local_path(url)).unlink(missing_ok=True)
        except BaseException:
            sink.abort()
            raise


def set_default_index(index: Index | None) -> None:
    """Make ``index`` the one ``load_dataset("@local/...")`` and :func:`get_default_index` use.

    ``None`` forgets it (the next :func:`get_default_index` opens ``Index()`` again).
    """
    global _default_index
    if index is not None and not isinstance(index, Index):
        raise InvalidTypeError(
            f"set_default_index needs an atdata_lab.Index (or None to reset), not {type(index).__name__}"
        )
    _default_index = index


def get_default_index() -> Index:
    """The index set with :func:`set_default_index`, else ``Index()`` (SQLite under
    ``$ATDATA_HOME``), opened on first use and kept for the process."""
    global _default_index
    if _default_index is None:
        _default_index = Index()
    return _default_index
