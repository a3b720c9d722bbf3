"""``IndexEntry``: one dataset as the index knows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .views.entries import entry_summary_html
from .views.text import human_bytes

__all__ = ["IndexEntry"]


@dataclass
class IndexEntry:
    """A dataset in an index.

    Attributes:
        name: Unique within the index.
        cid: Content identity: schema content CID + shard checksums + sample count. It stays
            the same when the data moves or is promoted.
        schema_ref: ``atdata://local/schema/{Name}@{version}`` (or an at:// URI for
            entries read from the atmosphere).
        data_urls: The shard URLs, in order.
        num_samples: Samples in all shards.
        size_bytes: Bytes in all shards.
        shard_checksums: sha256 hex digest of each shard, in order.
        metadata: Free-form metadata given when writing.
        created_at: ISO-8601 UTC time the entry was written.
        description, tags, license: Descriptive fields (also published when promoted).
        published_uri: The at:// URI of the dataset record once promoted, else None.
    """

    name: str
    cid: str
    schema_ref: str
    data_urls: list[str]
    num_samples: int | None = None
    size_bytes: int | None = None
    shard_checksums: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    published_uri: str | None = None
    _index: Any = field(default=None, repr=False, compare=False)

    @property
    def num_shards(self) -> int:
        return len(self.data_urls)

    @property
    def schema_name(self) -> str:
        ref = self.schema_ref
        return ref.rsplit("/", 1)[-1] if "@" in ref else ref

    @classmethod
    def from_row(cls, row: dict[str, Any], index: Any = None) -> IndexEntry:
        return cls(
            name=row["name"],
            cid=row["cid"],
            schema_ref=row["schema_ref"],
            data_urls=list(row.get("data_urls") or []),
            num_samples=row.get("num_samples"),
            size_bytes=row.get("size_bytes"),
            shard_checksums=list(row.get("shard_checksums") or []),
            metadata=dict(row.get("metadata") or {}),
            created_at=row.get("created_at"),
            description=row.get("description"),
            tags=list(row.get("tags") or []),
            license=row.get("license"),
            published_uri=row.get("published_uri"),
            _index=index,
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cid": self.cid,
            "schema_ref": self.schema_ref,
            "data_urls": self.data_urls,
            "num_samples": self.num_samples,
            "num_shards": self.num_shards,
            "size_bytes": self.size_bytes,
            "shard_checksums": self.shard_checksums,
            "metadata": self.metadata,
            "description": self.description,
            "tags": self.tags,
            "license": self.license,
            "created_at": self.created_at,
            "published_uri": self.published_uri,
        }

    def dataset(self, sample_type: type | None = None):
        """This entry's data as a :class:`~atdata_lab.dataset.Dataset` (type from the schema)."""
        if self._index is None:
            from .dataset import Dataset

            return Dataset(self.data_urls, sample_type=sample_type)
        return self._index.dataset(self, sample_type=sample_type)

    def inspect(self, **kwargs: Any):
        """Open the sample inspector on this entry (needs ``atdata-lab[widgets]``)."""
        from .widgets.sample_inspector import SampleInspector

        return SampleInspector(self, **kwargs)

    def table(self, **kwargs: Any):
        """Open the samples table on this entry (needs ``atdata-lab[widgets]``)."""
        from .widgets.samples_table import SamplesTable

        return SamplesTable(self, **kwargs)

    def stats(self, progress: Any = None) -> Any:
        """Per-field statistics of this entry's data (:meth:`Dataset.stats`), computed once per
        entry object, then kept."""
        got = self.__dict__.get("_stats")
        if got is None:
            got = self.__dict__["_stats"] = self.dataset().stats(progress=progress)
        return got

    def compare(self, other: Any, **kwargs: Any):
        """Open the compare view: this entry and ``other`` (an entry or dataset) side by side
        (needs ``atdata-lab[widgets]``)."""
        from .widgets.compare import CompareView

        return CompareView(self, other, **kwargs)

    def summary(self) -> str:
        pub = f", published {self.published_uri}" if self.published_uri else ""
        return (
            f"{self.name}: {self.num_samples} samples in {self.num_shards} shards, "
            f"{human_bytes(self.size_bytes)}, schema {self.schema_name}{pub}"
        )

    def _repr_html_(self) -> str:
        return entry_summary_html(self)
