"""Index providers: where an :class:`~atdata_lab.index.Index` keeps its entries and schemas."""

from .base import SORT_COLUMNS, IndexProvider, IndexUnavailableError

__all__ = ["IndexProvider", "IndexUnavailableError", "SORT_COLUMNS"]
