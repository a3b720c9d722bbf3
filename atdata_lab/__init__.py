"""atdata-lab: typed, sharded ML datasets, developed in Jupyter, published to ATProto.

``import atdata_lab as atdata`` runs atdata 0.7's tutorials unchanged.
"""

from .cache import verify_checksums
from .cid import generate_cid, verify_cid
from .dataset import Dataset, DatasetDict, SampleBatch, write_samples
from .entry import IndexEntry
from .errors import (
    AppViewError,
    AppViewRequiredError,
    AppViewUnavailableError,
    AtdataLabError,
    EntryConflictError,
    EntryNotFoundError,
    PartialFailureError,
    SampleDecodeError,
    SampleKeyError,
    SchemaConflictError,
    SchemaError,
    SchemaNotFoundError,
    ShardError,
    UntrustedSourceError,
)
from .index import Index, SearchPage, get_default_index, set_default_index
from .lens import Lens, LensNetwork, LensNotFoundError, lens
from .load import load_dataset
from .logs import configure_logging, get_logger, log_operation
from .manifest import (
    ManifestBuilder,
    ManifestField,
    ManifestWriter,
    QueryExecutor,
    SampleLocation,
    ShardManifest,
    query_fields,
)
from .progress import ProgressEvent, TqdmProgress
from .promotion import promote_to_atmosphere
from .repository import Repository, create_repository
from .sample import DictSample, Packable, PackableSample, packable
from .schema import Schema, schema_to_type
from .schema_diff import SchemaDiff, schema_diff
from .search import (
    AppViewSearchBackend,
    LocalSearchBackend,
    SearchAggregator,
    SearchBackend,
    SearchResult,
    SearchResults,
)
from .sources import BlobSource, DataSource, S3Source, URLSource
from .stores import LocalDiskStore
from .stores.base import AbstractDataStore, ShardWriteResult
from .urls import TrustPolicy

__version__ = "0.1.0"

AtdataError = AtdataLabError  # atdata's name for the root of its errors: the same class here

__all__ = [
    "AbstractDataStore",
    "AppViewError",
    "AppViewRequiredError",
    "AppViewSearchBackend",
    "AppViewUnavailableError",
    "LocalSearchBackend",
    "SearchAggregator",
    "SearchBackend",
    "SearchResult",
    "SearchResults",
    "AtdataError",
    "BlobSource",
    "DataSource",
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
    "ManifestBuilder",
    "ManifestField",
    "ManifestWriter",
    "Packable",
    "PackableSample",
    "PartialFailureError",
    "ProgressEvent",
    "QueryExecutor",
    "S3DataStore",
    "Repository",
    "S3Source",
    "SampleBatch",
    "SampleDecodeError",
    "SampleLocation",
    "SampleKeyError",
    "Schema",
    "SchemaConflictError",
    "SchemaDiff",
    "SchemaError",
    "SchemaNotFoundError",
    "SearchPage",
    "ShardError",
    "ShardWriteResult",
    "ShardManifest",
    "TqdmProgress",
    "TrustPolicy",
    "URLSource",
    "UntrustedSourceError",
    "configure_logging",
    "create_repository",
    "generate_cid",
    "get_default_index",
    "get_logger",
    "lens",
    "load_dataset",
    "log_operation",
    "packable",
    "promote_to_atmosphere",
    "query_fields",
    "schema_diff",
    "schema_to_type",
    "set_default_index",
    "verify_checksums",
    "verify_cid",
    "write_samples",
]


def __getattr__(name: str):
    # Optional backends load on first use, so `import atdata_lab` needs no s3fs.
    if name == "S3DataStore":
        from . import stores

        return stores.S3DataStore
    raise AttributeError(f"module 'atdata_lab' has no attribute {name!r}")
