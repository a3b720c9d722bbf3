"""The samples of a dataset as rows: filtered by a predicate and sorted by a manifest field, each
row a sample's global index (``ds[k]``); and :class:`Selection`, what a filter selects.

:class:`SampleRows` answers "which sample is row *r*" for a table over any number of samples:
the manifests' per-sample columns are joined once (row *i* of the joined manifests is sample
*i* of the dataset) and kept; a filter is the predicate evaluated over them, a sort one argsort
of a column. Without manifests the rows are the samples in order: sorting and filtering then
raise :class:`~atdata_lab.errors.ManifestNotFoundError`, saying how to make manifests.

:class:`Selection` is what a predicate picks out of a dataset, for Python:
``sel.locations()`` (the :class:`~atdata_lab.manifest.SampleLocation` s ``ds.query`` returns),
``sel.indices``, ``sel.samples()``, ``sel.dataset()`` (a ``Dataset`` of just those samples) and
``sel.code`` (the line that makes the same query: ``ds.query(where=F.label == "cat")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, ManifestError, ManifestNotFoundError
from .predicate_text import query_code
from .predicates import COMPARISONS, Predicate
from .query import SampleLocation, _Joined, _mask_of, manifests_missing

__all__ = ["SampleRows", "Selection", "predicate_matches"]


def predicate_matches(predicate: Predicate, values: Mapping[str, Any]) -> bool:
    """Whether one sample's field ``values`` satisfy ``predicate``, as its manifest row would (a
    missing value, or one that does not compare, does not match; ``!=`` of it does)."""
    op = predicate.op
    if op == "and":
        return all(predicate_matches(p, values) for p in predicate.parts)
    if op == "or":
        return any(predicate_matches(p, values) for p in predicate.parts)
    if op == "not":
        return not predicate_matches(predicate.parts[0], values)
    v: Any = values.get(predicate.field or "")
    if isinstance(v, (np.generic, np.ndarray)) and v.ndim == 0:
        v = v.item()
    if op == "isin":
        return v is not None and v in predicate.value
    if v is None:
        return op == "ne"
    try:
        return bool(COMPARISONS[op][1](v, predicate.value))
    except TypeError:
        return op == "ne"


def _fields_of(sample: Any) -> dict[str, Any]:
    from ..views.samples import sample_fields

    return dict(sample_fields(sample))


class SampleRows:
    """The rows of a samples table over ``dataset``: ``order(where=, sort_by=)`` gives the global
    indices of the samples shown, in the order shown (kept until the next different request).

    Args:
        dataset: A :class:`~atdata_lab.dataset.Dataset` (without filter(): rows are read by index).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.n = len(dataset)
        self._joined: _Joined | None = None
        self._last: tuple[Any, ...] | None = None
        self._order: np.ndarray | None = None

    # -- manifests
    @property
    def has_manifests(self) -> bool:
        """Whether every shard has a manifest (then sorting and filtering work)."""
        return all(m is not None for m in self.dataset._load_manifests(missing="none"))

    @property
    def fields(self) -> list[str]:
        """The manifest fields (the columns a table may sort and filter by); [] without manifests."""
        if not self.has_manifests:
            return []
        return [str(c) for c in self.joined().columns if not str(c).startswith("__")]

    def joined(self) -> _Joined:
        """The per-sample manifest rows of every shard, row ``k`` being sample ``k``."""
        if self._joined is None:
            manifests = self.dataset._load_manifests(missing="none")
            absent = [u for u, m in zip(self.dataset.urls, manifests) if m is None]
            if absent:
                raise manifests_missing(absent, len(manifests))
            frames = [m.samples for m in manifests]
            cum = self.dataset._cumulative()
            for i, (url, df) in enumerate(zip(self.dataset.urls, frames)):
                if len(df) != cum[i + 1] - cum[i]:
                    raise ManifestError(
                        f"the manifest of {url} has {len(df)} rows but the shard {cum[i + 1] - cum[i]} samples: "
                        "rebuild the manifests (index.build_manifests(name))"
                    )
            nonempty = [df for df in frames if len(df)]
            self._joined = _Joined(nonempty or frames[:1])
        return self._joined

    def _need_manifests(self, what: str) -> None:
        if not self.has_manifests:
            absent = [
                u
                for u, m in zip(self.dataset.urls, self.dataset._load_manifests(missing="none"))
                if m is None
            ]
            err = manifests_missing(absent, len(self.dataset.urls))
            raise ManifestNotFoundError(f"{what} reads the shards' manifests, and {err}") from None

    # -- rows
    def order(
        self, where: Predicate | None = None, sort_by: str | None = None, descending: bool = False
    ) -> np.ndarray:
        """The global indices of the samples ``where`` selects (None: all), sorted by the manifest
        field ``sort_by`` (None: dataset order; missing values last), as an int64 array.

        Raises:
            ManifestNotFoundError: Filtering or sorting, and a shard has no manifest.
            InvalidArgumentError: ``sort_by`` is not a manifest field, or not a scalar one.
        """
        key = (where, sort_by, descending)
        last = self._last
        if self._order is not None and last is not None and last[0] is where and last[1:] == key[1:]:
            return self._order
        if where is None and sort_by is None:
            out = np.arange(self.n, dtype=np.int64)
        else:
            if where is not None:
                self._need_manifests("Filtering")
            if sort_by is not None:
                self._need_manifests(f"Sorting by {sort_by!r}")
            joined = self.joined()
            out = np.arange(len(joined), dtype=np.int64)
            if sort_by is not None:
                out = self._sorted(joined, sort_by, descending)
            if where is not None:
                mask = _mask_of(where, joined, "all shards").to_numpy(dtype=bool, na_value=False)
                out = out[mask[out]]
        self._last, self._order = key, out
        return out

    def _sorted(self, joined: _Joined, name: str, descending: bool) -> np.ndarray:
        if name.startswith("__") or name not in joined.columns:
            fields = [str(c) for c in joined.columns if not str(c).startswith("__")]
            raise InvalidArgumentError(
                f"cannot sort by {name!r}: it is not a manifest field (sortable fields: {', '.join(fields) or 'none'}); "
                "declare it a manifest field of the sample type and rebuild the manifests"
            )
        col = joined[name]
        try:
            ranks = col.rank(method="first", ascending=not descending, na_option="keep").to_numpy()
        except TypeError as e:
            raise InvalidArgumentError(f"cannot sort by {name!r}: its values do not compare ({e})") from None
        ranks = np.where(np.isnan(ranks), np.inf, ranks)
        return np.argsort(ranks, kind="stable").astype(np.int64)

    def selection(self, where: Predicate | None) -> Selection:
        return Selection(self.dataset, where, rows=self)


class Selection:
    """The samples of ``dataset`` that ``predicate`` selects (None: every sample).

    Attributes:
        source: The dataset selected from.
        predicate: The :class:`~atdata_lab.manifest.Predicate`, or None.
    """

    def __init__(self, dataset: Any, predicate: Predicate | None, *, rows: SampleRows | None = None) -> None:
        if predicate is not None and not isinstance(predicate, Predicate):
            raise InvalidArgumentError(
                f"a selection is made by a predicate (F.label == 'cat'), not {type(predicate).__name__}"
            )
        self.source = dataset
        self.predicate = predicate
        self._rows = rows if rows is not None else SampleRows(dataset)

    @property
    def code(self) -> str:
        """The Python line that makes the same query: ``ds.query(where=F.label == "cat")``."""
        return query_code(self.predicate)

    @property
    def indices(self) -> np.ndarray:
        """The global indices (``ds[k]``) of the selected samples, in dataset order."""
        return self._rows.order(self.predicate)

    def __len__(self) -> int:
        return len(self.indices)

    def locations(self) -> list[SampleLocation]:
        """The :class:`SampleLocation` s of the selected samples (what ``ds.query(where=...)`` returns)."""
        if self.predicate is None:
            return self.source.query(lambda df: df["__key__"].notna())
        return self.source.query(self.predicate)

    def samples(self, limit: int | None = None) -> list[Any]:
        """The selected samples (the first ``limit`` of them), each read with one seek."""
        idx = self.indices if limit is None else self.indices[: max(int(limit), 0)]
        return self.source.select(idx.tolist())

    def dataset(self) -> Any:
        """A ``Dataset`` of the selected samples: the shards holding any, filtered by the predicate
        (evaluated on each sample's fields as on its manifest row). It iterates (``for s in
        sel.dataset()``) like any dataset; as after ``filter()``, its ``len()`` is unknown: use
        ``len(sel)``."""
        src = self.source
        if self.predicate is None:
            return src
        idx = self.indices
        cum = np.asarray(src._cumulative())
        shards = np.unique(np.searchsorted(cum, idx, side="right") - 1).tolist()
        pred = self.predicate
        urls = [src.urls[i] for i in shards] or src.urls[:1]
        return src._derive(urls=urls).filter(
            lambda s: bool(shards) and predicate_matches(pred, _fields_of(s))
        )

    def __repr__(self) -> str:
        return f"Selection({self.code}, {len(self):,} of {self._rows.n:,} samples)"
