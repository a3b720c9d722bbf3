"""PyTorch: a ``torch.utils.data.IterableDataset`` view of a :class:`~atdata_lab.Dataset`.

``ds.to_torch(batch_size=32)`` builds batches inside the DataLoader's workers, in our layout (a
:class:`~atdata_lab.SampleBatch` whose uniform NDArray columns are tensors); pass it to
``DataLoader(tds, batch_size=None, num_workers=..., persistent_workers=...)``. Without
``batch_size`` it yields samples (NDArray fields as tensors), and :func:`collate` stacks them into
the same batch layout. Each epoch, every sample goes to exactly one (rank, worker)
(:mod:`atdata_lab.distributed`); with ``shuffle=True`` the order is the elastic global order of
``(seed, epoch)``: call ``set_epoch()`` between epochs (it reaches persistent workers too).

Resume: :class:`Loader` wraps the DataLoader and keeps, in the main process, how much of each
worker's sequence was *delivered*; its ``state_dict()``/``load_state_dict()`` (the method names of
torchdata's ``StatefulDataLoader``; torchdata itself is not needed) restore exactly the samples not
yet delivered, with the same or another number of workers.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..dataset import Dataset, SampleBatch
from ..errors import InvalidArgumentError
from ..sample import DictSample

__all__ = ["Loader", "TorchDataset", "collate", "to_tensor"]


def to_tensor(value: Any) -> Any:
    """An ndarray as a tensor (copied only when read-only), a list of arrays as a list of tensors."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value if value.flags.writeable else value.copy())
    if isinstance(value, list) and value and any(isinstance(v, np.ndarray) for v in value):
        return [to_tensor(v) for v in value]
    return value


def _sample_to_tensors(sample: Any) -> Any:
    if isinstance(sample, DictSample):
        return DictSample({k: to_tensor(v) for k, v in sample._data.items()})
    if dataclasses.is_dataclass(sample) and not isinstance(sample, type):
        out = copy.copy(sample)
        for f in dataclasses.fields(sample):
            v = getattr(sample, f.name)
            if isinstance(v, np.ndarray):
                object.__setattr__(out, f.name, to_tensor(v))
        return out
    return sample


def _batch_to_tensors(batch: SampleBatch) -> SampleBatch:
    cols = {k: to_tensor(v) for k, v in batch.as_dict().items()}
    return SampleBatch(columns=cols, sample_type=batch.sample_type, keys=batch.keys)


def collate(samples: list[Any]) -> SampleBatch:
    """Samples (as yielded without ``batch_size``) into our batch layout: uniform tensors stacked on
    a new leading axis, everything else a list."""
    if not samples:
        return SampleBatch(columns={}, sample_type=DictSample, keys=[])
    st = type(samples[0])
    if st is DictSample:
        names = list(dict.fromkeys(k for s in samples for k in s._data))
        cols: dict[str, Any] = {n: [s._data.get(n) for s in samples] for n in names}
    else:
        names = [f.name for f in dataclasses.fields(samples[0])]
        cols = {n: [getattr(s, n) for s in samples] for n in names}
    for n, col in cols.items():
        first = col[0]
        if isinstance(first, torch.Tensor) and all(
            isinstance(t, torch.Tensor) and t.shape == first.shape and t.dtype == first.dtype for t in col
        ):
            cols[n] = torch.stack(col)
    return SampleBatch(columns=cols, sample_type=st, keys=[str(i) for i in range(len(samples))])


class TorchDataset(IterableDataset):
    """A Dataset as a torch IterableDataset (see the module's doc)."""

    def __init__(
        self,
        ds: Dataset,
        *,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        block: int | None = None,
    ) -> None:
        super().__init__()
        self.ds = ds
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.block = block
        # shared memory: persistent workers see set_epoch() made in the main process
        self._epoch = torch.tensor([epoch], dtype=torch.int64).share_memory_()
        self._resume: dict[str, Any] | None = None
        self._resume_epoch: int | None = None
        self._resume_on = torch.tensor([0], dtype=torch.int64).share_memory_()  # off once used

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next iteration (its shuffled order)."""
        if not isinstance(epoch, int) or epoch < 0:
            raise InvalidArgumentError(f"epoch must be a non-negative integer, not {epoch!r}")
        self._epoch[0] = epoch

    def _iterator(self) -> Any:
        epoch = self.epoch
        if self.shuffle:
            it = self.ds.shuffled(seed=self.seed, epoch=epoch, block=self.block, batch_size=self.batch_size)
        else:
            it = self.ds.ordered(batch_size=self.batch_size)
        if self._resume is not None and self._resume_epoch == epoch and int(self._resume_on[0]):
            it.load_state_dict(self._resume)
        return it

    def __iter__(self) -> Iterator[Any]:
        it = self._iterator()
        for item in it:
            if self.batch_size is None:
                yield _sample_to_tensors(item)
            else:
                out = _batch_to_tensors(item)
                out._progress = it.state_dict()  # type: ignore[attr-defined]  # read by Loader
                yield out


class Loader:
    """``DataLoader(tds, batch_size=None, **kwargs)`` with a resumable state of what it delivered.

    ``state_dict()`` may be taken between batches; ``load_state_dict()`` before iterating makes
    the next iteration deliver exactly the samples the saved run had not delivered, whatever the
    number of workers now.
    """

    def __init__(self, tds: TorchDataset, **kwargs: Any) -> None:
        if tds.batch_size is None:
            raise InvalidArgumentError(
                "Loader needs batches built in the workers: ds.to_torch(batch_size=...)"
            )
        if kwargs.get("batch_size") is not None:
            raise InvalidArgumentError("give the batch size to to_torch(batch_size=...), not to Loader")
        kwargs["batch_size"] = None
        self.tds = tds
        self.loader = DataLoader(tds, **kwargs)
        self._state: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[SampleBatch]:
        self._state = None
        for batch in self.loader:
            progress = batch.__dict__.pop("_progress")
            if self._state is None:
                self._state = progress
            else:
                last, new = self._state["stages"][-1], progress["stages"][-1]
                last["consumed"] = [max(a, b) for a, b in zip(last["consumed"], new["consumed"])]
            yield batch
        self.tds._resume_on[0] = 0  # persistent workers too: the next epoch starts afresh
        self.tds._resume = None

    def __len__(self) -> int:
        return len(self.loader)

    def state_dict(self) -> dict[str, Any]:
        """The epoch, and per worker how many of its positions were delivered (plain data)."""
        if self._state is not None:
            inner = copy.deepcopy(self._state)
        elif self.tds._resume is not None:
            inner = copy.deepcopy(self.tds._resume)
        else:
            inner = self.tds._iterator().state_dict()
        return {"epoch": self.tds.epoch, "iterator": inner}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a saved run from its epoch (call before iterating)."""
        if not isinstance(state, dict) or "iterator" not in state or "epoch" not in state:
            raise InvalidArgumentError("not a Loader state: it has no 'epoch' and 'iterator'")
        self.tds.set_epoch(int(state["epoch"]))
        self.tds._resume = None
        probe = self.tds._iterator()
        probe.load_state_dict(state["iterator"])  # checks it against this dataset and order now
        self.tds._resume = state["iterator"]
        self.tds._resume_epoch = int(state["epoch"])
        self.tds._resume_on[0] = 1
