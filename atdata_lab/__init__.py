"""atdata-lab: typed, sharded ML datasets, developed in Jupyter, published to ATProto.

``import atdata_lab as atdata`` runs atdata 0.7's tutorials unchanged.
"""

from .dataset import Dataset, DatasetDict, SampleBatch, write_samples
from .entry import IndexEntry
from .errors import (
    AtdataLabError,
    EntryConflictError,
    EntryNotFoundError,
    SampleDecodeError,
    SchemaConflictError,
    SchemaError,
    SchemaNotFoundError,
    ShardError,
    UntrustedSourceError,
)
from .index import Index, SearchPage
from .lens import Lens, LensNetwork, LensNotFoundError, lens
from .load import load_dataset
from .progress import ProgressEvent, TqdmProgress
from .sample import DictSample, PackableSample, packable
from .schema import Schema
from .schema_diff import SchemaDiff, schema_diff
from .stores import LocalDiskStore
from .urls import TrustPolicy

__version__ = "0.1.0"

__all__ = [
    "AtdataLabError",
    "Dataset",
    "DatasetDict",
    "DictSample",
    "EntryConflictError",
    "EntryNotFoundError",
    "Index",
    "IndexEntry",
    "Lens",
    "LensNetwork",
    "LensNotFoundError",
    "LocalDiskStore",
    "PackableSample",
    "ProgressEvent",
    "S3DataStore",
    "SampleBatch",
    "SampleDecodeError",
    "Schema",
    "SchemaConflictError",
    "SchemaDiff",
    "SchemaError",
    "SchemaNotFoundError",
    "SearchPage",
    "ShardError",
    "TqdmProgress",
    "TrustPolicy",
    "UntrustedSourceError",
    "lens",
    "load_dataset",
    "packable",
    "schema_diff",
    "write_samples",
]


def __getattr__(name: str):
    # Optional backends load on first use, so `import atdata_lab` needs no s3fs.
    if name == "S3DataStore":
        from . import stores

        return stores.S3DataStore
    raise AttributeError(f"module 'atdata_lab' has no attribute {name!r}")
