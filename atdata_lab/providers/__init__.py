"""Index providers: where an :class:`~atdata_lab.index.Index` keeps its entries and schemas."""

from .base import SORT_COLUMNS, IndexProvider

__all__ = ["IndexProvider", "SORT_COLUMNS"]
