"""Jupyter widgets on top of the atdata-lab library (needs ``pip install 'atdata-lab[widgets]'``).

* :class:`IndexBrowser` — browse, search and open the entries of an :class:`~atdata_lab.Index`
  (``index.browse()``).
* :class:`SampleInspector` — look at the samples of a dataset or entry, field by field
  (``entry.inspect()`` / ``dataset.inspect()``).
* :class:`SamplesTable` — every sample as a table row, column statistics in the headers, filters
  that become code (``entry.table()`` / ``dataset.table()``).
* :class:`SchemaDiffViewer` (formerly ``SchemaDiff``) and :func:`diff` — compare two schemas side by side.
* :class:`PromotionWizard` — publish an entry to the AT Protocol network, step by step.
* :class:`CompareView` — two datasets, splits or versions side by side: field statistics with the
  differences highlighted, next to the schema diff (``ds.compare(other)`` / ``entry.compare(other)``).

Every name is imported on first use, so ``import atdata_lab.widgets`` costs nothing and
``import atdata_lab`` never imports ipywidgets. Shared building blocks live in
:mod:`atdata_lab.widgets._base`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "IndexBrowser",
    "SampleInspector",
    "SamplesTable",
    "SchemaDiffViewer",
    "SchemaDiff",
    "PromotionWizard",
    "CompareView",
    "diff",
]

_EXPORTS = {
    "IndexBrowser": ".index_browser",
    "SampleInspector": ".sample_inspector",
    "SamplesTable": ".samples_table",
    "SchemaDiffViewer": ".schema_diff",
    "SchemaDiff": ".schema_diff",
    "PromotionWizard": ".promotion_wizard",
    "CompareView": ".compare",
    "diff": ".schema_diff",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'atdata_lab.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
