"""atdata-lab: typed, sharded ML datasets, developed in Jupyter, published to ATProto."""
from .dataset import Dataset, DatasetDict, SampleBatch
from .sample import DictSample, PackableSample, packable
from .schema import Schema
from .shards import write_samples
