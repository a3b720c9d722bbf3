"""Per-column statistics of a whole dataset, and comparing the statistics of two datasets.

:func:`dataset_stats` gives a :class:`DatasetStats`: for each field, how many samples and how many
missing values, and by the field's kind a histogram (numbers), the most frequent values
(categories, text), or lengths, shapes and dtypes (text, bytes, arrays).

* When every shard has a manifest (and no ``filter()``/``map()`` changes the samples), the
  statistics of the manifest fields come from the manifests' per-sample columns: no shard is read
  (``source == "manifest"``). Fields the manifests leave out (arrays, bytes) are then listed with
  their count and kind only (``measured=False``); ``dataset_stats(ds, source="scan")`` measures
  them too.
* Otherwise one streaming pass reads the samples in batches (``source == "scan"``), with bounded
  memory whatever the size of the dataset: numbers are kept exactly up to
  :data:`EXACT_VALUES` per field, then summed into a fine histogram whose range doubles as needed
  (the final bins are then approximate: ``exact=False``); distinct values are counted exactly up
  to :data:`DISTINCT_MAX` per field, then only the most frequent are kept (``distinct=None``).

Both ways compute the same statistics from the same values (one accumulator does both).
``Dataset.stats()`` and ``IndexEntry.stats()`` return them, computed once per object.

:func:`predicate_for_bin` / :func:`predicate_for_value` (also methods of :class:`ColumnStats`)
turn a histogram bar or a top value into a query predicate (``F.label == "cat"``) for
``ds.query(where=...)``. :func:`compare_stats` decides which fields of two datasets differ, and
how (Facets Overview style); :func:`compare_datasets` compares two datasets or index entries by
their cached statistics; ``views/column_stats.py`` shows both.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgumentError, ManifestError, NotFoundError
from .logs import logger
from .manifest.predicates import F, Predicate
from .progress import ProgressEvent, ProgressLike, resolve_progress
from .sample import DictSample
from .schema import fields_of
from .urls import is_local, local_path

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = [
    "ColumnStats",
    "DatasetStats",
    "FieldComparison",
    "StatsComparison",
    "compare_datasets",
    "compare_stats",
    "dataset_stats",
    "BATCH",
    "EXACT_VALUES",
    "DISTINCT_MAX",
]

log = logger("column_stats")

BATCH = 512  # samples read at once by a scan
EXACT_VALUES = 200_000  # numbers of one field kept for an exact histogram (then: a fine histogram)
FINE_BINS = 4096  # bins of the fine histogram numbers go into past EXACT_VALUES
DISTINCT_MAX = 10_000  # distinct values counted exactly per field (then only the most frequent)
SHAPES_MAX = 64  # distinct array shapes counted per field
CATEGORICAL_MAX = 100  # text with at most this many distinct values is a category
KINDS = ("numeric", "categorical", "text", "array", "bytes", "other")


# ----------------------------------------------------------------------------- the results


@dataclass(frozen=True)
class ColumnStats:
    """The statistics of one field over a dataset.

    Attributes:
        name: The field.
        kind: ``"numeric"``, ``"categorical"`` (bools, and text with few distinct values),
            ``"text"``, ``"array"``, ``"bytes"`` or ``"other"`` (lists, dicts, mixed values).
        count: Samples seen.
        nulls: Missing values (``None``; ``NaN`` in a number field).
        minimum, maximum, mean, std: Numbers (``None`` for other kinds, or when every value is missing).
        histogram: Numbers: ``(low, high, count)`` bins of equal width from the minimum to the
            maximum (a bin holds ``low <= x < high``, the last one ``x <= high`` too); whole numbers
            spanning fewer values than bins get one bin per value, ``(k - 0.5, k + 0.5, count)``.
            Values ``±inf`` are left out of the bins.
        top_values: Categories and text: the most frequent values (as text) and their counts, most
            frequent first (ties by value).
        distinct: How many distinct values (None when too many to count exactly, or not counted).
        lengths: Text, bytes, lists: ``(min, mean, max)`` length; arrays: of their element count.
        shapes: Arrays: the most frequent shapes and their counts.
        dtype: Arrays: the element type (``"uint8"``; ``"mixed"`` when it varies).
        integral: Numbers: every value is a whole number.
        exact: False when bounded memory made the histogram or the top values approximate.
        measured: False for a field the manifests leave out when the statistics came from them
            (only ``count`` and ``kind`` are known).
        value_type: Categories: ``"str"`` or ``"bool"`` (what :meth:`predicate_for_value` compares with).
    """

    name: str
    kind: str
    count: int
    nulls: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    histogram: tuple[tuple[float, float, int], ...] = ()
    top_values: tuple[tuple[str, int], ...] = ()
    distinct: int | None = None
    lengths: tuple[int, float, int] | None = None
    shapes: tuple[tuple[tuple[int, ...], int], ...] = ()
    dtype: str | None = None
    std: float | None = None
    integral: bool = False
    exact: bool = True
    measured: bool = True
    value_type: str | None = None

    @property
    def null_fraction(self) -> float:
        """``nulls / count`` (0 for an empty field)."""
        return self.nulls / self.count if self.count else 0.0

    def predicate_for_bin(self, i: int) -> Predicate:
        """The query predicate of histogram bin ``i``: ``F.name.between(low, high)`` for the last
        bin, ``(F.name >= low) & (F.name < high)`` for the others, ``F.name == k`` for a bin of one
        whole number. ``len(ds.query(where=p))`` is the bin's count when the statistics are exact.

        Raises:
            InvalidArgumentError: The field has no histogram, or no bin ``i`` (a ``ValueError``).
        """
        return predicate_for_bin(self, i)

    def predicate_for_value(self, v: str) -> Predicate:
        """The query predicate of a top value: ``F.name == v`` (``v`` as :attr:`top_values` gives
        it; a bool field compares with ``True``/``False``).

        Raises:
            InvalidArgumentError: The field is not a category or text (a ``ValueError``).
        """
        return predicate_for_value(self, v)


@dataclass(frozen=True)
class DatasetStats:
    """The statistics of every field of a dataset (:func:`dataset_stats`).

    Attributes:
        columns: ``{field: ColumnStats}``, in the sample type's field order.
        n_samples: Samples in the dataset.
        source: ``"manifest"`` (from the shards' manifests) or ``"scan"`` (one streaming pass).
        label: What the statistics are of (a dataset's name, when known).
    """

    columns: dict[str, ColumnStats]
    n_samples: int
    source: str
    label: str = ""

    def __getitem__(self, name: str) -> ColumnStats:
        return self.columns[name]

    def __repr__(self) -> str:
        from .views.column_stats import dataset_stats_text

        return dataset_stats_text(self)

    def _repr_html_(self) -> str:
        from .views.column_stats import dataset_stats_html

        return dataset_stats_html(self)


# ----------------------------------------------------------------------------- predicates


def _check_queryable(cs: ColumnStats) -> None:
    if not cs.measured or cs.kind in ("array", "bytes", "other"):
        raise InvalidArgumentError(
            f"field {cs.name!r} is {cs.kind}: queries compare manifest fields (numbers, text, bools); "
            "filter this field with ds.filter(lambda s: ...) instead"
        )


def predicate_for_bin(cs: ColumnStats, i: int) -> Predicate:
    """See :meth:`ColumnStats.predicate_for_bin`."""
    _check_queryable(cs)
    if not cs.histogram:
        raise InvalidArgumentError(
            f"field {cs.name!r} has no histogram ({cs.kind}): use predicate_for_value for its top values"
        )
    if not -len(cs.histogram) <= i < len(cs.histogram):
        raise InvalidArgumentError(f"field {cs.name!r} has {len(cs.histogram)} histogram bins: no bin {i}")
    i %= len(cs.histogram)
    low, high, _ = cs.histogram[i]
    col = F[cs.name]
    if cs.integral and high - low == 1.0 and (low + 0.5).is_integer():
        return col == _whole(low + 0.5)
    if i == len(cs.histogram) - 1:
        return col.between(_whole(low) if cs.integral else low, _whole(high) if cs.integral else high)
    return (col >= (_whole(low) if cs.integral else low)) & (col < (_whole(high) if cs.integral else high))


def _whole(x: float) -> float | int:
    """A bin edge as an int when it is one (so the predicate reads ``F.n >= 3``, not ``3.0``)."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def predicate_for_value(cs: ColumnStats, v: str) -> Predicate:
    """See :meth:`ColumnStats.predicate_for_value`."""
    _check_queryable(cs)
    if cs.kind not in ("categorical", "text"):
        raise InvalidArgumentError(
            f"field {cs.name!r} is {cs.kind}, not a category or text: use predicate_for_bin for its histogram"
        )
    if cs.value_type == "bool":
        if v not in ("True", "False"):
            raise InvalidArgumentError(f"field {cs.name!r} holds True/False, not {v!r}")
        return F[cs.name] == (v == "True")
    return F[cs.name] == str(v)


# ----------------------------------------------------------------------------- accumulating


class _Numbers:
    """Minimum, maximum, mean, std and histogram of numbers, in bounded memory: values are kept
    until ``limit`` of them (exact bins), then counted into a fine histogram whose range doubles to
    take what comes."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.n = 0
        self.total = 0.0
        self.squares = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.flo = math.inf  # finite minimum and maximum (the bins' range)
        self.fhi = -math.inf
        self.integral = True
        self.kept: list[np.ndarray] = []
        self.n_kept = 0
        self.fine: np.ndarray | None = None  # FINE_BINS counts from fine_lo, each fine_w wide
        self.fine_lo = 0.0
        self.fine_w = 1.0

    def add(self, arr: np.ndarray) -> None:
        if not len(arr):
            return
        self.n += len(arr)
        with np.errstate(all="ignore"):
            self.total += float(np.sum(arr))
            self.squares += float(np.sum(arr * arr))
        self.lo = min(self.lo, float(arr.min()))
        self.hi = max(self.hi, float(arr.max()))
        finite = arr[np.isfinite(arr)]
        if self.integral and not np.all(finite == np.floor(finite)):
            self.integral = False
        if not len(finite):
            return
        self.flo = min(self.flo, float(finite.min()))
        self.fhi = max(self.fhi, float(finite.max()))
        if self.fine is None:
            self.kept.append(finite)
            self.n_kept += len(finite)
            if self.limit is not None and self.n_kept > self.limit:
                self._to_fine()
            return
        self._into_fine(finite)

    def _to_fine(self) -> None:
        values = np.concatenate(self.kept)
        self.kept, self.n_kept = [], 0
        span = self.fhi - self.flo
        self.fine_lo = self.flo
        self.fine_w = (span if span > 0 else max(abs(self.flo), 1.0)) / (FINE_BINS - 1)
        self.fine = np.zeros(FINE_BINS, dtype=np.int64)
        self._into_fine(values)

    def _into_fine(self, values: np.ndarray) -> None:
        assert self.fine is not None
        lo, hi = float(values.min()), float(values.max())
        while lo < self.fine_lo or hi >= self.fine_lo + FINE_BINS * self.fine_w:
            merged = self.fine.reshape(-1, 2).sum(axis=1)
            zeros = np.zeros(FINE_BINS // 2, dtype=np.int64)
            if lo < self.fine_lo:  # grow downwards: the old range becomes the upper half
                self.fine_lo -= FINE_BINS * self.fine_w
                self.fine = np.concatenate([zeros, merged])
            else:
                self.fine = np.concatenate([merged, zeros])
            self.fine_w *= 2
        idx = np.clip(((values - self.fine_lo) / self.fine_w).astype(np.int64), 0, FINE_BINS - 1)
        self.fine += np.bincount(idx, minlength=FINE_BINS)

    def bins(self, bins: int) -> tuple[int, float, float]:
        """How many bins, and the range they cover: one per value for whole numbers spanning
        fewer values than ``bins``, one for a single value, else ``bins`` from min to max."""
        if self.integral and self.fhi - self.flo + 1 <= bins:
            return int(self.fhi - self.flo) + 1, self.flo - 0.5, self.fhi + 0.5
        if self.fhi == self.flo:
            return 1, self.flo, self.fhi
        return bins, self.flo, self.fhi

    def histogram(self, bins: int) -> tuple[tuple[float, float, int], ...]:
        if self.flo > self.fhi:
            return ()
        n, lo, hi = self.bins(bins)
        if lo == hi:
            edges = np.array([lo, hi])
            counts = np.array([self.n_kept if self.fine is None else int(self.fine.sum())])
        elif self.fine is None:  # numpy's equal-width bins (edges np.linspace(lo, hi, n + 1))
            values = np.concatenate(self.kept) if self.kept else np.zeros(0)
            counts, edges = np.histogram(values, bins=n, range=(lo, hi))
        else:  # each fine bin's count goes to the final bin holding its centre
            edges = np.linspace(lo, hi, n + 1)
            centres = self.fine_lo + (np.arange(FINE_BINS) + 0.5) * self.fine_w
            where = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, n - 1)
            counts = np.bincount(where, weights=self.fine, minlength=n).astype(np.int64)
        return tuple((float(a), float(b), int(c)) for a, b, c in zip(edges[:-1], edges[1:], counts))


class _Counter:
    """Counts of values by their text: exact up to ``limit`` distinct values, then the most
    frequent are kept (pruned to ``limit`` whenever twice that many are held)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}
        self.overflowed = False

    def add(self, texts: Iterable[str]) -> None:
        counts = self.counts
        for t, n in Counter(texts).items():  # counted in C, then merged
            counts[t] = counts.get(t, 0) + n
        self._bound()

    def add_count(self, text: str, n: int) -> None:
        """``text`` seen ``n`` times."""
        if n:
            self.counts[text] = self.counts.get(text, 0) + n
            self._bound()

    def _bound(self) -> None:
        counts = self.counts
        if self.limit is not None and len(counts) > self.limit:
            self.overflowed = True
            if len(counts) > 2 * self.limit:
                kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.limit]
                self.counts = dict(kept)

    def top(self, k: int) -> tuple[tuple[str, int], ...]:
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return tuple(items)


class _Lengths:
    def __init__(self) -> None:
        self.n = 0
        self.total = 0
        self.lo: int | None = None
        self.hi: int | None = None

    def add(self, lengths: np.ndarray) -> None:
        if not len(lengths):
            return
        self.n += len(lengths)
        self.total += int(lengths.sum())
        lo, hi = int(lengths.min()), int(lengths.max())
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)

    def result(self) -> tuple[int, float, int] | None:
        if not self.n or self.lo is None or self.hi is None:
            return None
        return (self.lo, self.total / self.n, self.hi)


_NUMBER_TYPES = (int, float, np.integer, np.floating)


class _Column:
    """Everything :class:`ColumnStats` says about one field, accumulated a batch at a time.

    ``exact=True`` keeps every value (for columns already in memory, such as a manifest's)."""

    def __init__(self, name: str, exact: bool = False) -> None:
        self.name = name
        self.count = 0
        self.nulls = 0
        self.families: dict[str, int] = {}  # value family -> values seen
        self.numbers = _Numbers(None if exact else EXACT_VALUES)
        self.values = _Counter(None if exact else DISTINCT_MAX)
        self.lengths = _Lengths()
        self.shapes = _Counter(None if exact else SHAPES_MAX)
        self.dtypes: set[str] = set()

    def _seen(self, family: str, n: int) -> None:
        if n:
            self.families[family] = self.families.get(family, 0) + n

    def add_array(self, arr: np.ndarray) -> None:
        """A batch of array values stacked into one array (one sample per row)."""
        n = len(arr)
        self.count += n
        self._seen("array", n)
        if n:
            self.shapes.add_count(repr(tuple(arr.shape[1:])), n)
            self.dtypes.add(str(arr.dtype))
            self.lengths.add(np.full(n, int(np.prod(arr.shape[1:], dtype=np.int64))))

    def add_numbers(self, arr: np.ndarray) -> None:
        """A batch of numbers (NaN: missing)."""
        arr = np.asarray(arr, dtype=np.float64)
        self.count += len(arr)
        missing = np.isnan(arr)
        k = int(missing.sum())
        self.nulls += k
        present = arr[~missing] if k else arr
        self._seen("number", len(present))
        self.numbers.add(present)

    def add_bools(self, arr: np.ndarray) -> None:
        self.count += len(arr)
        self._seen("bool", len(arr))
        t = int(np.count_nonzero(arr))
        self.values.add_count("True", t)
        self.values.add_count("False", len(arr) - t)

    def add_values(self, values: list[Any]) -> None:
        """A batch of values of any kind (None: missing)."""
        self.count += len(values)
        types = set(map(type, values))
        if type(None) in types:
            present = [v for v in values if v is not None]
            self.nulls += len(values) - len(present)
            types.discard(type(None))
        else:
            present = values
        if not present:
            return
        if types == {str}:
            self._seen("str", len(present))
            self.values.add(present)
            self.lengths.add(np.fromiter(map(len, present), dtype=np.int64, count=len(present)))
            return
        if types == {bool} or types == {np.bool_}:
            self.add_bools(np.array(present, dtype=bool))
            self.count -= len(present)
            return
        if all(issubclass(t, _NUMBER_TYPES) and not issubclass(t, (bool, np.bool_)) for t in types):
            arr = np.array([float(v) for v in present], dtype=np.float64)
            self.count -= len(present)
            self.add_numbers(arr)
            return
        for v in present:  # mixed or structured values: one at a time
            self._one(v)

    def _one(self, v: Any) -> None:
        if isinstance(v, (bool, np.bool_)):
            self._seen("bool", 1)
            self.values.add(["True" if v else "False"])
        elif isinstance(v, _NUMBER_TYPES):
            f = float(v)
            if f != f:
                self.nulls += 1
            else:
                self._seen("number", 1)
                self.numbers.add(np.array([f]))
        elif isinstance(v, str):
            self._seen("str", 1)
            self.values.add([v])
            self.lengths.add(np.array([len(v)]))
        elif isinstance(v, (bytes, bytearray, memoryview)):
            self._seen("bytes", 1)
            self.lengths.add(np.array([len(v)]))
        elif isinstance(v, np.ndarray):
            self._seen("array", 1)
            self.shapes.add([repr(tuple(v.shape))])
            self.dtypes.add(str(v.dtype))
            self.lengths.add(np.array([v.size]))
        elif isinstance(v, (list, tuple)):
            self._seen("list", 1)
            self.lengths.add(np.array([len(v)]))
        else:
            self._seen("other", 1)

    def result(self, bins: int, top: int) -> ColumnStats:
        fams = set(self.families)
        if fams == {"number"}:
            nb = self.numbers
            mean = nb.total / nb.n if nb.n else None
            std = None
            if nb.n and mean is not None and math.isfinite(mean):
                std = math.sqrt(max(nb.squares / nb.n - mean * mean, 0.0))
            return ColumnStats(
                self.name,
                "numeric",
                self.count,
                self.nulls,
                minimum=nb.lo if nb.n else None,
                maximum=nb.hi if nb.n else None,
                mean=mean,
                std=std,
                histogram=nb.histogram(bins),
                integral=nb.integral,
                exact=nb.fine is None,
            )
        if fams in ({"str"}, {"bool"}):
            distinct = None if self.values.overflowed else len(self.values.counts)
            is_bool = fams == {"bool"}
            few = distinct is not None and (distinct <= CATEGORICAL_MAX or distinct * 4 <= self.count)
            return ColumnStats(
                self.name,
                "categorical" if is_bool or few else "text",
                self.count,
                self.nulls,
                top_values=self.values.top(top),
                distinct=distinct,
                lengths=None if is_bool else self.lengths.result(),
                exact=not self.values.overflowed,
                value_type="bool" if is_bool else "str",
            )
        if fams == {"array"}:
            shapes = tuple((_shape(s), n) for s, n in self.shapes.top(top))
            return ColumnStats(
                self.name,
                "array",
                self.count,
                self.nulls,
                lengths=self.lengths.result(),
                shapes=shapes,
                dtype=next(iter(self.dtypes))
                if len(self.dtypes) == 1
                else ("mixed" if self.dtypes else None),
                exact=not self.shapes.overflowed,
            )
        if fams == {"bytes"}:
            return ColumnStats(self.name, "bytes", self.count, self.nulls, lengths=self.lengths.result())
        if fams == {"list"}:
            return ColumnStats(self.name, "other", self.count, self.nulls, lengths=self.lengths.result())
        return ColumnStats(self.name, "other", self.count, self.nulls)


def _shape(text: str) -> tuple[int, ...]:
    inner = text.strip("()").strip()
    return tuple(int(p) for p in inner.split(",") if p.strip())


# ----------------------------------------------------------------------------- the two ways


def _schema_kinds(ds: Dataset) -> dict[str, tuple[str, bool]]:
    """``{field: (kind, optional)}`` of the samples' type ({} for DictSample; a lens's view type:
    what a scan reads)."""
    st = ds.sample_type
    if st is DictSample:
        return {}
    try:
        return {f.name: (f.type.kind, f.optional) for f in fields_of(st)}
    except Exception:  # noqa: BLE001 - not a packable class: fields found by scanning
        return {}


def _total_known(ds: Dataset) -> int | None:
    """How many samples, when known without reading a shard (from a writer or an index); else
    None (a scan is one pass: it is not preceded by a count)."""
    if any(kind == "filter" for kind, _ in ds._ops) or ds._node is not None or ds._split_done:
        return None
    total = 0
    for url in ds.urls:
        info = ds._infos.get(url)
        row = ds._rows.get(url)
        if info is not None:
            total += info.num_samples
        elif row is not None:
            total += row.num_samples
        else:
            return None
    return total


def _scan(ds: Dataset, bins: int, top: int, progress: ProgressLike) -> DatasetStats:
    report = resolve_progress(progress)
    kinds = _schema_kinds(ds)
    cols: dict[str, _Column] = {name: _Column(name) for name in kinds}
    total = _total_known(ds)
    done = 0
    report(ProgressEvent("stats", 0, total, "samples", "reading samples"))
    for batch in ds.ordered(batch_size=BATCH):
        n = len(batch)
        for name, values in batch.as_dict().items():
            col = cols.get(name)
            if col is None:
                col = cols[name] = _Column(name)
                if done:  # a DictSample field first seen now: missing before
                    col.count = col.nulls = done
            if isinstance(values, np.ndarray):
                if kinds.get(name, ("ndarray", False))[0] == "ndarray" or values.ndim > 1:
                    col.add_array(values)
                elif values.dtype.kind == "b":
                    col.add_bools(values)
                else:
                    col.add_numbers(values)
            else:
                col.add_values(list(values))
        done += n
        for col in cols.values():  # DictSample fields absent from this batch
            if col.count < done:
                col.nulls += done - col.count
                col.count = done
        report(ProgressEvent("stats", done, total, "samples", "reading samples"))
    report(ProgressEvent("stats", done, done, "samples", "done", finished=True))
    return DatasetStats({n: c.result(bins, top) for n, c in cols.items()}, done, "scan")


def _manifest_column(col: _Column, series: Any, aggregate: dict[str, Any] | None) -> None:
    """Feed a manifest column (all shards' rows) to ``col``, as a scan would feed its values."""
    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")
    if kind in "iuf":
        col.add_numbers(series.to_numpy(dtype=np.float64, na_value=np.nan))
        return
    missing = series.isna().to_numpy(dtype=bool)
    has_missing = bool(missing.any())
    if kind == "b" and not has_missing:
        col.add_bools(series.to_numpy(dtype=bool))
        return
    values = series.tolist()
    if has_missing:
        values = [None if m else v for v, m in zip(values, missing.tolist())]
    if aggregate is not None and aggregate.get("type") == "set":  # lists, held as JSON text
        import json

        values = [
            json.loads(v) if isinstance(v, str) else v.tolist() if isinstance(v, np.ndarray) else v
            for v in values
        ]  # (or as Arrow lists, which pandas gives as arrays: a scan sees lists)
    col.add_values(values)


def _from_manifests(
    ds: Dataset, manifests: list[Any], bins: int, top: int, progress: ProgressLike
) -> DatasetStats:
    report = resolve_progress(progress)
    pd = __import__("pandas")
    total = sum(m.num_samples for m in manifests)
    report(ProgressEvent("stats", 0, len(manifests), "shards", "reading manifests"))
    frames = []
    for i, m in enumerate(manifests):
        frames.append(m.samples)
        report(ProgressEvent("stats", i + 1, len(manifests), "shards", "reading manifests"))
    names: dict[str, None] = {}
    for df in frames:
        names.update(dict.fromkeys(c for c in df.columns if not str(c).startswith("__")))
    kinds = _schema_kinds(ds)
    order = list(kinds) + [n for n in names if n not in kinds]
    out: dict[str, ColumnStats] = {}
    for name in order:
        if name not in names:  # left out of the manifests: only what the type says
            kind, optional = kinds[name]
            out[name] = ColumnStats(name, _KIND_OF_FIELD.get(kind, "other"), total, 0, measured=False)
            continue
        parts = [df[name] if name in df.columns else pd.Series([None] * len(df)) for df in frames]
        series = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        aggregate = next((m.aggregates.get(name) for m in manifests if name in m.aggregates), None)
        col = _Column(name, exact=True)
        _manifest_column(col, series, aggregate)
        out[name] = col.result(bins, top)
    report(ProgressEvent("stats", len(manifests), len(manifests), "shards", "done", finished=True))
    return DatasetStats(out, total, "manifest")


def _misdescribed(ds: Dataset, manifests: list[Any]) -> str | None:
    """The first shard whose manifest visibly does not describe it, else None: its sample count
    differs from the one the dataset already knows (from a writer or an index), or it counts no
    samples in a local shard that holds some (atdata 0.7 leaves its last shard's manifest empty)."""
    for url, m in zip(ds.urls, manifests):
        info = ds._infos.get(url)
        row = ds._rows.get(url)
        known = info.num_samples if info is not None else row.num_samples if row is not None else None
        if known is not None:
            if known != m.num_samples:
                return url
        elif m.num_samples == 0 and is_local(url):
            try:
                size = os.path.getsize(local_path(url))
            except OSError:
                continue
            if size > EMPTY_TAR:
                return url
    return None


EMPTY_TAR = 10240  # bytes of a tar file with no member (its end blocks, padded to a record)

_KIND_OF_FIELD = {
    "int": "numeric",
    "float": "numeric",
    "bool": "categorical",
    "str": "text",
    "bytes": "bytes",
    "ndarray": "array",
}


def dataset_stats(
    ds: Dataset, *, bins: int = 20, top: int = 10, progress: ProgressLike = None, source: str = "auto"
) -> DatasetStats:
    """The per-field statistics of ``ds`` (see the module's description).

    Args:
        ds: The dataset.
        bins: Histogram bins of number fields.
        top: Most frequent values (and array shapes) kept.
        progress: ``True`` (a tqdm bar), ``None``/``False`` or a callable of
            :class:`~atdata_lab.progress.ProgressEvent` (task ``"stats"``).
        source: ``"auto"`` (the manifests when every shard has one, else a scan), ``"manifest"``
            (raises when a shard has none) or ``"scan"``.

    Raises:
        InvalidArgumentError: A bad ``bins``, ``top`` or ``source`` (a ``ValueError``).
        ManifestNotFoundError: ``source="manifest"`` and a shard has no manifest.
    """
    if not isinstance(bins, int) or bins < 1:
        raise InvalidArgumentError(f"bins must be a positive int, not {bins!r}")
    if not isinstance(top, int) or top < 1:
        raise InvalidArgumentError(f"top must be a positive int, not {top!r}")
    if source not in ("auto", "manifest", "scan"):
        raise InvalidArgumentError(f"source must be 'auto', 'manifest' or 'scan', not {source!r}")
    if source != "scan" and not ds._ops:
        manifests = ds._load_manifests(missing="error" if source == "manifest" else "none")
        if all(m is not None for m in manifests):
            wrong = _misdescribed(ds, manifests)
            if wrong is None:
                return _from_manifests(ds, manifests, bins, top, progress)
            if source == "manifest":
                raise ManifestError(
                    f"the manifest of shard {wrong} does not describe it (a different sample count: "
                    "atdata 0.7 writes an empty manifest for the last shard); rebuild the manifests "
                    "(index.build_manifests(name)) or use source='scan'"
                )
            log.info("the manifest of %s does not describe its shard: statistics by a scan", wrong)
    elif source == "manifest":
        raise InvalidArgumentError(
            "statistics from manifests describe the stored samples: filter()/map() change them; "
            "use source='scan' (or 'auto')"
        )
    return _scan(ds, bins, top, progress)


# ----------------------------------------------------------------------------- comparing


MEAN_SHIFT = 0.1  # a mean moved by this many standard deviations (the larger one) is a change
NULLS_SHIFT = 0.01  # null fraction changed by this much (1 percentage point)
RANGE_SHIFT = 0.1  # min or max moved by this share of the wider span
TOP_SHIFT = 0.1  # total variation distance of the top values' shares


@dataclass(frozen=True)
class FieldComparison:
    """One field of two datasets' statistics side by side.

    Attributes:
        name: The field.
        a, b: Its statistics on each side (None where the field is missing).
        status: ``"same"``, ``"changed"``, ``"added"`` (only in ``b``) or ``"removed"`` (only in ``a``).
        changes: What differs, among ``"kind"``, ``"nulls"``, ``"mean"``, ``"min"``, ``"max"``,
            ``"top"`` (most frequent value), ``"values"`` (the top values' shares, or values only
            one side has), ``"lengths"``, ``"shape"``, ``"dtype"``.
        notes: One short sentence per change, for people.
    """

    name: str
    a: ColumnStats | None
    b: ColumnStats | None
    status: str
    changes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatsComparison:
    """Two datasets' statistics compared field by field (:func:`compare_stats`).

    Attributes:
        a, b: The two sides' statistics.
        a_label, b_label: What each side is (a name).
        fields: Every field of either side: ``a``'s order, then fields only ``b`` has.
    """

    a: DatasetStats
    b: DatasetStats
    fields: tuple[FieldComparison, ...]
    a_label: str = "a"
    b_label: str = "b"

    @property
    def changed(self) -> list[FieldComparison]:
        """The fields that differ (changed, added or removed)."""
        return [f for f in self.fields if f.status != "same"]

    def __getitem__(self, name: str) -> FieldComparison:
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFoundError(f"no field {name!r} in this comparison; fields: {[f.name for f in self.fields]}")

    def __repr__(self) -> str:
        from .views.column_stats import stats_comparison_text

        return stats_comparison_text(self)

    def _repr_html_(self) -> str:
        from .views.column_stats import stats_comparison_html

        return stats_comparison_html(self)


def _shares(cs: ColumnStats) -> dict[str, float]:
    present = cs.count - cs.nulls
    return {v: n / present for v, n in cs.top_values} if present else {}


def _modes(cs: ColumnStats) -> set[str]:
    """The values tied for most frequent."""
    return {v for v, n in cs.top_values if n == cs.top_values[0][1]}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _compare_field(name: str, a: ColumnStats, b: ColumnStats) -> FieldComparison:
    changes: list[str] = []
    notes: list[str] = []
    if a.kind != b.kind:
        changes.append("kind")
        notes.append(f"kind {a.kind} -> {b.kind}")
    if abs(a.null_fraction - b.null_fraction) > NULLS_SHIFT:
        changes.append("nulls")
        notes.append(f"missing {a.null_fraction:.1%} -> {b.null_fraction:.1%}")
    if a.kind == b.kind == "numeric" and a.mean is not None and b.mean is not None:
        spread = max(a.std or 0.0, b.std or 0.0)
        shift = abs(a.mean - b.mean)
        if (spread > 0 and shift > MEAN_SHIFT * spread) or (spread == 0 and shift > 0):
            changes.append("mean")
            sds = f" ({shift / spread:.1f} sd)" if spread > 0 else ""
            notes.append(f"mean {_fmt(a.mean)} -> {_fmt(b.mean)}{sds}")
        ends = [x for x in (a.minimum, b.minimum, a.maximum, b.maximum) if x is not None]
        span = max(ends) - min(ends) if ends else 0.0
        for what, x, y in (("min", a.minimum, b.minimum), ("max", a.maximum, b.maximum)):
            if x is None or y is None or x == y:
                continue
            if not (math.isfinite(x) and math.isfinite(y)) or span == 0 or abs(x - y) > RANGE_SHIFT * span:
                changes.append(what)
                notes.append(f"{what} {_fmt(x)} -> {_fmt(y)}")
    if a.kind == b.kind == "categorical":  # (text's most frequent values say little: mostly unique)
        if a.top_values and b.top_values and not (_modes(a) & _modes(b)):
            changes.append("top")
            notes.append(f"most frequent {a.top_values[0][0]!r} -> {b.top_values[0][0]!r}")
        sa, sb = _shares(a), _shares(b)
        keys = set(sa) | set(sb)
        tvd = 0.5 * sum(abs(sa.get(k, 0.0) - sb.get(k, 0.0)) for k in keys)
        only_a = [
            k for k, _ in a.top_values if a.distinct is not None and b.distinct is not None and k not in sb
        ]
        only_b = [
            k for k, _ in b.top_values if a.distinct is not None and b.distinct is not None and k not in sa
        ]
        # a value both sides count in full is "only one side's" when the other never saw it
        only_a = [k for k in only_a if b.exact and len(b.top_values) == (b.distinct or 0)]
        only_b = [k for k in only_b if a.exact and len(a.top_values) == (a.distinct or 0)]
        if tvd > TOP_SHIFT or only_a or only_b:
            changes.append("values")
            parts = []
            if tvd > TOP_SHIFT:
                parts.append(f"top values' shares differ by {tvd:.0%}")
            if only_b:
                parts.append("new " + ", ".join(map(repr, only_b[:3])))
            if only_a:
                parts.append("gone " + ", ".join(map(repr, only_a[:3])))
            notes.append("; ".join(parts))
    if a.lengths and b.lengths and a.kind == b.kind and a.kind != "array":
        if abs(a.lengths[1] - b.lengths[1]) > 0.1 * max(a.lengths[1], b.lengths[1], 1.0):
            changes.append("lengths")
            notes.append(f"mean length {a.lengths[1]:.1f} -> {b.lengths[1]:.1f}")
    if a.kind == b.kind == "array":
        sa_ = {s for s, _ in a.shapes}
        sb_ = {s for s, _ in b.shapes}
        if sa_ != sb_:
            changes.append("shape")
            notes.append("shapes " + _shapes_text(a) + " -> " + _shapes_text(b))
        if a.dtype != b.dtype:
            changes.append("dtype")
            notes.append(f"dtype {a.dtype} -> {b.dtype}")
    return FieldComparison(name, a, b, "changed" if changes else "same", tuple(changes), tuple(notes))


def _shapes_text(cs: ColumnStats) -> str:
    return ", ".join("x".join(map(str, s)) or "scalar" for s, _ in cs.shapes[:3]) or "-"


def compare_stats(
    a: DatasetStats, b: DatasetStats, *, a_label: str = "", b_label: str = ""
) -> StatsComparison:
    """Which fields of two datasets' statistics differ, and how (the thresholds are this module's
    ``MEAN_SHIFT``, ``NULLS_SHIFT``, ``RANGE_SHIFT``, ``TOP_SHIFT``). Counts are shown, not judged:
    two splits differ in size by design."""
    out: list[FieldComparison] = []
    for name, ca in a.columns.items():
        cb = b.columns.get(name)
        if cb is None:
            out.append(FieldComparison(name, ca, None, "removed", ("field",), (f"only in {a_label or 'a'}",)))
        elif not (ca.measured and cb.measured):
            out.append(FieldComparison(name, ca, cb, "same"))
        else:
            out.append(_compare_field(name, ca, cb))
    for name, cb in b.columns.items():
        if name not in a.columns:
            out.append(FieldComparison(name, None, cb, "added", ("field",), (f"only in {b_label or 'b'}",)))
    return StatsComparison(a, b, tuple(out), a_label or a.label or "a", b_label or b.label or "b")


def compare_datasets(a: Any, b: Any, *, progress: ProgressLike = None) -> StatsComparison:
    """Compare two datasets or index entries (their cached :meth:`stats`) field by field."""
    sa = a.stats(progress=progress)
    sb = b.stats(progress=progress)
    return compare_stats(sa, sb, a_label=_label_of(a, sa), b_label=_label_of(b, sb))


def _label_of(obj: Any, stats: DatasetStats) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name:
        return name
    if stats.label:
        return stats.label
    urls = getattr(obj, "urls", None)
    if urls:
        from .views.text import shard_label

        first = shard_label(urls[0])
        if len(urls) == 1:
            return first
        return re.sub(r"-\d+\.tar$", "", first) + f" ({len(urls)} shards)"
    return type(obj).__name__
