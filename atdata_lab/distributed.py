"""Who reads what in one epoch across ranks and workers, the epoch's global order, and resume state.

A *reader* is one (rank, worker) pair: ``slot = rank * num_workers + worker`` of
``slots = world_size * num_workers``. For one epoch every sample is given to exactly one slot:

- reading in order, each slot takes whole shards (``shards[slot::slots]``) when there are at least
  as many shards as slots, and otherwise every ``slots``-th sample (a per-sample stride);
- shuffled with ``epoch=``, the epoch has one **global order** that depends only on
  ``(seed, epoch, block)`` and the shards (never on ranks or workers): the shards are permuted,
  then the samples of each run of ``block`` permuted shards are permuted together. Slot ``s``
  reads positions ``s, s + slots, s + 2 * slots, ...`` of that order, so the union of all slots,
  position by position, is the same order on 1 process or on 4 ranks x 2 workers.

Unequal counts per slot are reported (:func:`plan`); ``uneven="drop"`` cuts every slot to the
smallest count and ``"pad"`` repeats samples of a slot's own sequence up to the largest (what DDP
needs: the same number of batches on every rank).

Resume: an iterator's :meth:`EpochIterator.state_dict` holds the order, the layout and, per
stage, how many positions each of the rank's workers has consumed. Loading it gives exactly the
positions not consumed; the number of workers may change (the rank's remaining positions, in the
global order, are split again among the new workers), the ranks may not.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import AtdataLabWarning, InvalidArgumentError
from .shards import _map_local
from .urls import is_local, local_path, read_range

__all__ = [
    "STATE_FORMAT",
    "EpochIterator",
    "EpochOrder",
    "Layout",
    "Plan",
    "UnevenPartitionWarning",
    "current_layout",
    "global_order",
    "plan",
    "slot_positions",
]

STATE_FORMAT = "atdata-lab/epoch-state@1"
UNEVEN = ("allow", "drop", "pad")
# remote samples of one shard read in one ranged request when the span holding them is at most
# this many bytes (and mostly theirs); otherwise one request per sample
SPAN_MAX = 64 << 20


class UnevenPartitionWarning(AtdataLabWarning):
    """Slots of a multi-rank job get different numbers of samples (DDP would hang on the last
    batch): pass ``uneven="drop"`` or ``"pad"`` to ``split_by_node``."""


@dataclass(frozen=True)
class Layout:
    """Where one reader sits: rank of ``world_size`` and DataLoader worker of ``num_workers``."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    @property
    def slot(self) -> int:
        return self.rank * self.num_workers + self.worker

    @property
    def slots(self) -> int:
        return self.world_size * self.num_workers


def _check_position(what: str, index: int, size: int) -> None:
    if not isinstance(size, int) or size < 1:
        raise InvalidArgumentError(f"{what} count must be a positive integer, not {size!r}")
    if not isinstance(index, int) or not 0 <= index < size:
        raise InvalidArgumentError(f"{what} must be in [0, {size}), not {index!r}")


def detect_node() -> tuple[int, int]:
    """(rank, world_size): from an initialised ``torch.distributed``, else ``RANK``/``WORLD_SIZE``,
    else (0, 1). torch is only looked at when the program already imported it."""
    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None) if torch is not None else None
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is None or world is None:
        return 0, 1
    try:
        r, w = int(rank), int(world)
    except ValueError:
        raise InvalidArgumentError(
            f"RANK={rank!r} and WORLD_SIZE={world!r} must be integers (set by torchrun)"
        ) from None
    _check_position("RANK", r, w)
    return r, w


def detect_worker() -> tuple[int, int]:
    """(worker id, number of workers) inside a torch DataLoader worker, else (0, 1)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        info = torch.utils.data.get_worker_info()
        if info is not None:
            return int(info.id), int(info.num_workers)
    return 0, 1


def current_layout(node: tuple[int, int] | None = None, worker: tuple[int, int] | None = None) -> Layout:
    """This reader's layout; ``node``/``worker`` given explicitly win over what is detected."""
    rank, world = node if node is not None else detect_node()
    w, nw = worker if worker is not None else detect_worker()
    _check_position("rank", rank, world)
    _check_position("worker", w, nw)
    return Layout(rank, world, w, nw)


# --------------------------------------------------------------------------------------- order
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray, key: int) -> np.ndarray:
    """splitmix64's finaliser of ``x ^ key`` (uint64, wrapping)."""
    with np.errstate(over="ignore"):
        z = (x ^ np.uint64(key)) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _permute(r: np.ndarray, n: int, keys: Sequence[int]) -> np.ndarray:
    """A keyed pseudo-random bijection of ``[0, n)`` evaluated at ``r``: a balanced Feistel network
    over the smallest even power of two >= n, cycle-walked back into range. Costs O(len(r)), with
    nothing of size n in memory, so a reader computes only its own positions of the order."""
    if n <= 1:
        return r.copy()
    half = max(1, (int(n - 1).bit_length() + 1) // 2)
    lo_mask = np.uint64((1 << half) - 1)
    x = r.astype(np.uint64)
    todo = np.ones(len(x), dtype=bool)
    while todo.any():
        v = x[todo]
        left, right = v >> np.uint64(half), v & lo_mask
        for k in keys:
            left, right = right, left ^ (_mix(right, k) & lo_mask)
        v = (left << np.uint64(half)) | right
        x[todo] = v
        todo[todo] = v >= np.uint64(n)
    return x.astype(np.int64)


class EpochOrder:
    """The epoch's global order, evaluated at any positions without building all of it.

    ``seed=None`` is storage order. Otherwise the shards are permuted, then the samples of each run
    of ``block`` permuted shards (all shards when None) are permuted together by a keyed
    bijection; everything depends only on ``(seed, epoch, block, counts)``.
    """

    def __init__(
        self, counts: Sequence[int] | np.ndarray, seed: int | None, epoch: int = 0, block: int | None = None
    ) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        self.total = int(self.counts.sum())
        self.seed = seed
        if seed is None:
            return
        if not isinstance(seed, int) or seed < 0 or not isinstance(epoch, int) or epoch < 0:
            raise InvalidArgumentError(
                f"seed and epoch must be non-negative integers, not {seed!r}, {epoch!r}"
            )
        n = len(self.counts)
        b = n if block is None else block
        if not isinstance(b, int) or b < 1:
            raise InvalidArgumentError(f"block must be a positive number of shards, not {block!r}")
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch])))
        perm = rng.permutation(n)
        starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]) if n else self.counts
        self.perm_counts = self.counts[perm]
        self.perm_starts = starts[perm]
        self.perm_cum = np.concatenate(
            [[0], np.cumsum(self.perm_counts)]
        )  # positions where each shard's run starts
        self.block_first = np.arange(0, n, b)  # index (in permuted order) of each block's first shard
        self.block_pos = self.perm_cum[self.block_first]
        self.block_len = np.diff(np.concatenate([self.block_pos, [self.total]]))
        self.keys = [int(k) for k in rng.integers(0, 2**63, size=len(self.block_first) * 6)]
        self.keys_per_block = 6

    def ids(self, positions: np.ndarray) -> np.ndarray:
        """Global sample ids (``shard's first id + index in shard``) at these positions."""
        pos = np.asarray(positions, dtype=np.int64)
        if self.seed is None:
            return pos.copy()
        out = np.empty(len(pos), dtype=np.int64)
        blk = np.searchsorted(self.block_pos, pos, side="right") - 1
        by_block = np.argsort(blk, kind="stable")
        bounds = np.flatnonzero(np.diff(blk[by_block])) + 1
        k = self.keys_per_block
        for sel in np.split(by_block, bounds) if len(pos) else []:
            b = int(blk[sel[0]])
            local = _permute(
                pos[sel] - self.block_pos[b], int(self.block_len[b]), self.keys[b * k : (b + 1) * k]
            )
            within = local + self.block_pos[b]  # a position inside the block's shards, in permuted order
            s = np.searchsorted(self.perm_cum, within, side="right") - 1
            out[sel] = self.perm_starts[s] + (within - self.perm_cum[s])
        return out


def global_order(
    counts: Sequence[int] | np.ndarray, seed: int | None, epoch: int = 0, block: int | None = None
) -> np.ndarray:
    """The whole epoch order (global sample ids, ``int64``); see :class:`EpochOrder`."""
    order = EpochOrder(counts, seed, epoch, block)
    return order.ids(np.arange(order.total, dtype=np.int64))


def _stride(n: int, slot: int, slots: int) -> np.ndarray:
    return np.arange(slot, n, slots, dtype=np.int64)


def _whole_shards(counts: np.ndarray, slot: int, slots: int) -> np.ndarray:
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = range(slot, len(counts), slots)
    if not len(chosen):
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(starts[s], starts[s] + counts[s], dtype=np.int64) for s in chosen])


def _first_stage_count(counts: np.ndarray, slot: int, slots: int, by_shards: bool) -> int:
    if by_shards:
        return int(counts[slot::slots].sum())
    n = int(counts.sum())
    return n // slots + (1 if slot < n % slots else 0)


@dataclass(frozen=True)
class Plan:
    """What each slot of the first stage reads: ``counts`` before and ``sizes`` after
    ``uneven`` (``dropped``/``padded`` samples in all); ``by_shards`` tells whole shards
    per slot (True) or a per-sample stride."""

    slots: int
    by_shards: bool
    counts: tuple[int, ...]
    sizes: tuple[int, ...]
    uneven: str

    @property
    def even(self) -> bool:
        return len(set(self.sizes)) <= 1

    @property
    def dropped(self) -> int:
        return sum(self.counts) - sum(min(c, s) for c, s in zip(self.counts, self.sizes))

    @property
    def padded(self) -> int:
        return sum(max(0, s - c) for c, s in zip(self.counts, self.sizes))


def plan(counts: Sequence[int] | np.ndarray, slots: int, *, shuffle: bool, uneven: str = "allow") -> Plan:
    """The first-stage partition of shards with ``counts`` samples among ``slots`` readers."""
    if uneven not in UNEVEN:
        raise InvalidArgumentError(f"uneven must be one of {', '.join(UNEVEN)}, not {uneven!r}")
    c = np.asarray(counts, dtype=np.int64)
    by_shards = not shuffle and len(c) >= slots
    per: tuple[int, ...] = tuple(_first_stage_count(c, s, slots, by_shards) for s in range(slots))
    if uneven == "drop":
        sizes = (min(per),) * slots
    elif uneven == "pad" and any(per):
        sizes = (max(per),) * slots
    else:
        sizes = per
    return Plan(slots, by_shards, per, sizes, uneven)


def _fit(seq: np.ndarray, size: int, total: int) -> np.ndarray:
    """``seq`` cut or padded to ``size`` (padding repeats it; an empty one repeats the order's start)."""
    if len(seq) >= size:
        return seq[:size]
    source = seq if len(seq) else np.arange(min(total, size), dtype=np.int64)
    return np.concatenate([seq, np.resize(source, size - len(seq))])


def slot_positions(p: Plan, counts: Sequence[int] | np.ndarray, slot: int) -> np.ndarray:
    """Positions (in the global order) slot ``slot`` reads in the first stage, after ``uneven``."""
    c = np.asarray(counts, dtype=np.int64)
    seq = _whole_shards(c, slot, p.slots) if p.by_shards else _stride(int(c.sum()), slot, p.slots)
    return _fit(seq, p.sizes[slot], int(c.sum()))


def _split_again(remaining: np.ndarray, shard_of: np.ndarray | None, worker: int, workers: int) -> np.ndarray:
    """The share of ``worker`` of a rank's remaining positions (in order): whole runs of one shard
    each when there are enough runs (reading in order), else a stride."""
    if shard_of is not None and len(remaining):
        s = shard_of[remaining]
        cuts = np.flatnonzero(s[1:] != s[:-1]) + 1
        runs = np.split(remaining, cuts)
        if len(runs) >= workers:
            mine = runs[worker::workers]
            return np.concatenate(mine) if mine else np.zeros(0, np.int64)
    return remaining[worker::workers]


def _fingerprint(urls: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(urls).encode()).hexdigest()[:32]


# ----------------------------------------------------------------------------------- iteration
class EpochIterator:
    """One reader's samples (or batches) of one epoch, with resumable state.

    Returned by ``Dataset.ordered()`` and ``Dataset.shuffled()``. ``state_dict()`` can be taken
    at any point; ``load_state_dict()`` before the first ``next()`` makes the iterator yield
    exactly the positions the saved run had not consumed (the ranks must match; the number of
    workers may differ). The method names follow torchdata's ``Stateful`` protocol.
    """

    def __init__(
        self,
        ds: Any,
        batch_size: int | None = None,
        *,
        seed: int | None = None,
        epoch: int | None = None,
        block: int | None = None,
        buffer: int | None = None,
    ) -> None:
        self._ds = ds
        self._batch_size = batch_size
        self._seed = seed
        self._epoch = epoch
        self._block = block
        self._buffer = buffer  # a buffer shuffle (not resumable, not elastic)
        self._rng = random.Random(seed) if buffer is not None else None
        self._shuffle = epoch is not None
        if ds._split_done:  # an explicit split_by_worker/shard(): these shards, read by this reader
            self.layout = Layout()
        else:
            given: tuple = ds._node or (None, None, "allow")
            node = (given[0], given[1]) if given[0] is not None else None
            self.layout = current_layout(node, (given[3], given[4]) if len(given) > 3 else None)
        self._uneven = ds._node[2] if ds._node is not None else "allow"
        self._stages: list[dict[str, Any]] = []
        self._out: Iterator[Any] | None = None
        self._fp: str | None = None
        self.consumed = 0  # positions of this reader's sequence handed out (or filtered out)
        self._counts: np.ndarray | None = None

    # -- state
    def _order_state(self) -> dict[str, Any]:
        return {"shuffle": self._shuffle, "seed": self._seed, "epoch": self._epoch, "block": self._block}

    def state_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able): the order, the layout, and the positions consumed so far.

        Only this reader's count is known here; a DataLoader's workers are gathered by
        :class:`atdata_lab.integrations.torch.Loader`.
        """
        if self._buffer is not None:
            raise InvalidArgumentError(
                "a buffer shuffle has no resumable state: use shuffled(seed=..., epoch=...), whose "
                "order is fixed by (seed, epoch)"
            )
        lay = self.layout
        consumed = [0] * lay.num_workers
        consumed[lay.worker] = self.consumed
        return self._state_with({"workers": lay.num_workers, "consumed": consumed})

    def _state_with(self, stage: dict[str, Any]) -> dict[str, Any]:
        lay = self.layout
        return {
            "format": STATE_FORMAT,
            "order": self._order_state(),
            "shards": len(self._ds.urls),
            "fingerprint": self._fingerprint(),
            "rank": lay.rank,
            "world_size": lay.world_size,
            "uneven": self._uneven,
            "stages": [*self._stages, stage],
        }

    def _fingerprint(self) -> str:
        if self._fp is None:
            self._fp = _fingerprint(self._ds.urls)
        return self._fp

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a saved run: yield exactly the positions it had not consumed."""
        if self._out is not None:
            raise InvalidArgumentError("load_state_dict() must come before the first next()")
        if self._buffer is not None:
            self.state_dict()  # raises: not resumable
        check_state(state, self)
        self._stages = [
            {"workers": int(s["workers"]), "consumed": [int(k) for k in s["consumed"]]}
            for s in state["stages"]
        ]

    # -- the sequence of this reader
    def counts(self) -> np.ndarray:
        if self._counts is None:
            ds = self._ds
            self._counts = np.array([ds._num_samples(u) for u in ds.urls], dtype=np.int64)
        return self._counts

    def partition(self) -> Plan:
        """The first stage's partition among all readers of the job: every reader's sample count
        before and after ``uneven`` (reads the shards' offset indexes)."""
        lay = self.layout
        workers = self._stages[0]["workers"] if self._stages else lay.num_workers
        return plan(self.counts(), lay.world_size * workers, shuffle=self._shuffle, uneven=self._uneven)

    def _streams_whole_shards(self) -> bool:
        """Whole shards, in order, no state, nothing to even out: stream them without an index."""
        return (
            not self._shuffle
            and not self._stages
            and self._uneven == "allow"
            and len(self._ds.urls) >= self.layout.slots
        )

    def positions(self) -> np.ndarray:
        """The global-order positions this reader reads (the first stage's, or what a loaded
        state left, split among this layout's workers)."""
        lay = self.layout
        counts = self.counts()
        p = self.partition()
        self._report(p)
        if not self._stages:
            return slot_positions(p, counts, lay.slot)
        shard_of = None if self._shuffle else np.repeat(np.arange(len(counts)), counts)
        first = self._stages[0]
        seqs = [slot_positions(p, counts, lay.rank * first["workers"] + w) for w in range(first["workers"])]
        for i, stage in enumerate(self._stages):
            rest = np.concatenate([q[k:] for q, k in zip(seqs, stage["consumed"])]) if seqs else seqs
            remaining = np.sort(rest, kind="stable")
            nxt = self._stages[i + 1]["workers"] if i + 1 < len(self._stages) else lay.num_workers
            seqs = [_split_again(remaining, shard_of, w, nxt) for w in range(nxt)]
        return seqs[lay.worker]

    def _report(self, p: Plan) -> None:
        if not p.even and self.layout.world_size > 1:
            warnings.warn(
                f"slots get unequal sample counts ({min(p.sizes)} to {max(p.sizes)} across "
                f"{p.slots} readers): DDP needs the same number of batches on every rank; pass "
                "split_by_node(uneven='drop') or 'pad'",
                UnevenPartitionWarning,
                stacklevel=2,
            )

    def _raw(self, refs: bool) -> Iterator[tuple[str, str, Any]]:
        ds, lay = self._ds, self.layout
        if self._streams_whole_shards():
            urls = ds.urls[lay.slot :: lay.slots]
            if self._rng is not None:
                self._rng.shuffle(urls)
            raw = ds._raw(urls, refs=refs)
        else:
            pos = self.positions()
            counts = self.counts()
            order = EpochOrder(counts, self._seed if self._shuffle else None, self._epoch or 0, self._block)
            raw = read_ids(ds, counts, order.ids(pos))
        for item in raw:
            self.consumed += 1
            yield item

    # -- iteration
    def __iter__(self) -> EpochIterator:
        return self

    def close(self) -> None:
        """Stop reading (as a generator's ``close()``): open shards and readahead are released."""
        close = getattr(self._out, "close", None)
        if close is not None:
            close()

    def __next__(self) -> Any:
        if self._out is None:
            ds, n = self._ds, self._batch_size
            refs = n is not None and not ds._ops and self._buffer is None
            raw = self._raw(refs)
            if self._buffer is not None:
                raw = ds._buffer_mix(raw, self._buffer, self._rng)
            self._out = ds._pipeline(raw, n)
        return next(self._out)


def check_state(state: Any, it: EpochIterator) -> None:
    """Refuse a state saved for another dataset, order or set of ranks, naming the difference."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise InvalidArgumentError(f"not an epoch state ({STATE_FORMAT}): {str(state)[:80]!r}")
    if state.get("order") != it._order_state():
        raise InvalidArgumentError(
            f"the state was saved for order {state.get('order')}, this iterator reads {it._order_state()}: "
            "call shuffled()/ordered() with the saved seed, epoch and block"
        )
    if state.get("fingerprint") != it._fingerprint():
        raise InvalidArgumentError("the state was saved for other shards (their URLs differ)")
    lay = it.layout
    if (state.get("rank"), state.get("world_size")) != (lay.rank, lay.world_size):
        raise InvalidArgumentError(
            f"the state was saved by rank {state.get('rank')} of {state.get('world_size')}, and this is "
            f"rank {lay.rank} of {lay.world_size}: resume with the same ranks (workers may change)"
        )
    if state.get("uneven") != it._uneven:
        raise InvalidArgumentError(
            f"the state was saved with uneven={state.get('uneven')!r}, not {it._uneven!r}"
        )
    stages = state.get("stages")
    if not isinstance(stages, list) or not stages:
        raise InvalidArgumentError("the state has no stages")
    for s in stages:
        workers, consumed = s.get("workers"), s.get("consumed")
        if (
            not isinstance(workers, int)
            or workers < 1
            or not isinstance(consumed, list)
            or len(consumed) != workers
        ):
            raise InvalidArgumentError(f"a stage of the state is malformed: {str(s)[:80]!r}")
        if any(not isinstance(k, int) or k < 0 for k in consumed):
            raise InvalidArgumentError(f"consumed counts must be non-negative integers: {consumed[:8]!r}")


def read_ids(ds: Any, counts: np.ndarray, ids: np.ndarray) -> Iterator[tuple[str, str, Any]]:
    """``(url, key, msgpack bytes)`` of the samples with these global ids, in the order given.

    Through each shard's offset index: local (and checksum-verified) shards are memory-mapped
    and sliced; remote samples of one shard that come in a run are fetched in one ranged
    request when they fill most of the span holding them, else one request each.
    """
    starts = np.concatenate([[0], np.cumsum(counts)])
    shard_of = np.searchsorted(starts, ids, side="right") - 1
    maps: OrderedDict[str, Any] = OrderedDict()
    i, n = 0, len(ids)
    while i < n:
        s = int(shard_of[i])
        j = i + 1
        while j < n and shard_of[j] == s:
            j += 1
        url = ds.urls[s]
        info = ds._offsets_of(url)  # no hashing: the offsets only (from the headers when unindexed)
        local_idx = ids[i:j] - starts[s]
        src = ds._source_of(url)
        if info.blocks is not None:  # a gzip shard: through its blocks (each inflated once, then cached)
            for k in local_idx:
                off, size = info.offsets[k]
                yield url, info.keys[k], ds._read_tar_bytes(info, src, int(off), int(size))
        elif is_local(src):
            yield from _local_run(maps, url, local_path(src), info, local_idx)
        else:
            yield from _remote_run(url, src, info, local_idx, ds.storage_options)
        i = j


def _local_run(maps: OrderedDict, url: str, path: str, info: Any, idx: np.ndarray) -> Iterator:
    mm = maps.get(path)
    if mm is None:
        mm = maps[path] = memoryview(_map_local(path))
        while len(maps) > 16:
            maps.popitem(last=False)  # views handed out keep their map alive
    maps.move_to_end(path)
    for k in idx:
        off, size = info.offsets[k]
        yield url, info.keys[k], mm[int(off) : int(off) + int(size)]


def _remote_run(url: str, src: str, info: Any, idx: np.ndarray, opts: dict[str, Any]) -> Iterator:
    offs = info.offsets[idx]
    lo, hi = int(offs[:, 0].min()), int((offs[:, 0] + offs[:, 1]).max())
    wanted = int(offs[:, 1].sum())
    if hi - lo <= SPAN_MAX and hi - lo <= 2 * wanted + (1 << 20):
        blob = memoryview(read_range(src, lo, hi - lo, opts))
        for k, (off, size) in zip(idx, offs):
            yield url, info.keys[k], blob[int(off) - lo : int(off) - lo + int(size)]
        return
    for k, (off, size) in zip(idx, offs):
        yield url, info.keys[k], read_range(src, int(off), int(size), opts)
