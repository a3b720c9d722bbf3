"""pandas and pyarrow, the optional packages manifests need, imported on first use with a clear error."""

from __future__ import annotations

from typing import Any

from ..errors import MissingDependencyError

INSTALL = "pip install 'atdata-lab[manifest]'"


def pandas() -> Any:
    """The ``pandas`` module (manifest rows are DataFrames, as in atdata)."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingDependencyError(
            f"manifests need pandas (their per-sample rows are DataFrames): {INSTALL}"
        ) from None
    return pd


def pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``: manifests' per-sample rows are stored as Parquet."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            f"manifests need pyarrow (their per-sample rows are stored as Parquet): {INSTALL}"
        ) from None
    if not hasattr(pa, "json_"):
        raise MissingDependencyError(
            f"manifests need pyarrow >= 19 (found {pa.__version__}; Parquet JSON columns): {INSTALL}"
        )
    return pa, pq
