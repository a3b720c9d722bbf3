"""``atdata-lab inspect TARGET`` and ``atdata-lab preview TARGET -n N``: what a dataset is, and its
first samples.

TARGET is a shard file, folder, glob or brace pattern (or an fsspec URL), ``@local/NAME`` (an entry
of the index), or a published dataset: ``at://...`` or ``@handle/NAME[@VERSION]``. Loading goes
through the library (:func:`~atdata_lab.load_dataset`, :class:`~atdata_lab.index.Index`,
:mod:`atdata_lab.promotion`); the text comes from :mod:`atdata_lab.views`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._common import (
    UsageError,
    add_index_option,
    emit,
    index_spec,
    open_index,
    optional_index,
    published_atmosphere,
    split_local,
    target_kind,
)

__all__ = ["SHARDS_SHOWN", "register"]

#: Shards listed by ``inspect`` unless ``--shards`` says otherwise.
SHARDS_SHOWN = 20


def register(sub: Any) -> None:
    """Add ``inspect`` and ``preview`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "inspect",
        help="what a dataset is: name, schema, counts, size, checksums, shards, where it is published",
        description="Describe a dataset. TARGET: shard files (path, folder, glob, brace pattern), "
        "@local/NAME (an entry of the index), at://... or @handle/NAME[@VERSION] (published; "
        "read from $ATDATA_PDS_URL).",
    )
    p.add_argument("target", metavar="TARGET")
    p.add_argument(
        "--shards",
        type=int,
        default=SHARDS_SHOWN,
        metavar="N",
        help=f"list at most N shards (default {SHARDS_SHOWN}; 0: all)",
    )
    add_index_option(p)
    p.set_defaults(func=_cmd_inspect)

    q = sub.add_parser(
        "preview",
        help="print the first samples (arrays summarised: dtype, shape, min, max, mean)",
        description="Print the first N samples of a dataset, one block each. TARGET as for inspect.",
    )
    q.add_argument("target", metavar="TARGET")
    q.add_argument("-n", type=int, default=5, metavar="N", help="how many samples (default 5)")
    q.add_argument(
        "--split", default=None, help="which split of shard files (default: train, else the first)"
    )
    add_index_option(q)
    q.set_defaults(func=_cmd_preview)


# ---------------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------------
def _cmd_inspect(args: argparse.Namespace) -> int:
    if args.shards < 0:
        raise UsageError(f"--shards {args.shards}: give a number of shards, or 0 for all")
    limit = args.shards or None
    kind = target_kind(args.target)
    if kind == "local":
        emit(_inspect_local(args.target, args.index, limit))
    elif kind == "published":
        emit(_inspect_published(args.target, args.index, limit))
    else:
        emit(_inspect_path(args.target, limit))
    return 0


def _inspect_local(target: str, index_arg: str | None, limit: int | None) -> str:
    from atdata_lab.views.entries import entry_text
    from atdata_lab.views.text import schema_label

    spec = index_spec(index_arg)
    index = open_index(spec)
    entry = index.get_entry_by_name(split_local(target))
    shards = index.get_shards(entry)
    head = f"dataset {target} in the {spec.kind} index {spec.where}"
    return (
        head
        + "\n\n"
        + entry_text(entry, shards, sample_type=schema_label(entry.schema_ref), shard_limit=limit)
    )


def _inspect_published(target: str, index_arg: str | None, limit: int | None) -> str:
    from atdata_lab.atmosphere import records as rec
    from atdata_lab.errors import AtdataLabError
    from atdata_lab.promotion.published import describe_storage, get_published_entry, resolve_entry_uri
    from atdata_lab.schema_diff import resolve_schema
    from atdata_lab.views.entries import entry_text

    index = optional_index(index_arg)
    atm = published_atmosphere(index)
    uri = resolve_entry_uri(atm, target)
    u = rec.AtUri.parse(uri)
    assert u.collection is not None and u.rkey is not None  # resolve_entry_uri checked it
    got = atm.get_record(u.collection, u.rkey, repo=u.authority)
    storage = describe_storage(rec.entry_from_record(got["value"])["storage"])
    entry = get_published_entry(index, uri)
    try:
        side = resolve_schema(entry.schema_ref, index)
        sample_type = f"{side.label} (published schema)"
    except (AtdataLabError, OSError) as e:
        sample_type = f"schema not available: {e}"
    head = f"dataset {target}" + (f" = {uri}" if uri != target else "") + f"\npublished on {atm.pds_url}"
    return head + "\n\n" + entry_text(entry, sample_type=sample_type, storage=storage, shard_limit=limit)


def _inspect_path(target: str, limit: int | None) -> str:
    from atdata_lab.load import load_dataset
    from atdata_lab.views.entries import description_text

    blocks = []
    splits = _load_path(target, load_dataset)
    for split, ds in splits.items():
        desc = ds.describe()
        shards = []
        for url in ds.urls:
            info = ds.shard_info(url)
            shards.append({"url": url, "num_samples": info.num_samples, "size": info.size})
        head = f"split {split}" if len(splits) > 1 else f"dataset {target} (split {split})"
        blocks.append(head + "\n\n" + description_text(desc, shards, where=target, shard_limit=limit))
    return "\n\n".join(blocks)


def _load_path(target: str, load_dataset: Any) -> Any:
    """Shard files as a DatasetDict (a target that is neither a file nor a pattern says so)."""
    from atdata_lab.urls import is_local

    if is_local(target) and not any(c in target for c in "*?[{") and not os.path.exists(target):
        raise UsageError(
            f"{target!r:.200}: no such file or folder (a dataset of the index is @local/NAME, a "
            "published one at://... or @handle/NAME)"
        )
    return load_dataset(target)


# ---------------------------------------------------------------------------------------------
# preview
# ---------------------------------------------------------------------------------------------
def _cmd_preview(args: argparse.Namespace) -> int:
    from atdata_lab.load import load_dataset
    from atdata_lab.views.samples import sample_header, sample_text

    if args.n < 0:
        raise UsageError(f"-n {args.n}: give a number of samples, 0 or more")
    kind = target_kind(args.target)
    if kind == "path":
        splits = _load_path(args.target, load_dataset)
    else:
        index = open_index(index_spec(args.index)) if kind == "local" else optional_index(args.index)
        splits = load_dataset(args.target, index=index)
    ds = _pick_split(splits, args.split)
    total = len(ds)
    shown = min(args.n, total)
    emit(f"{args.target}: {shown:,} of {total:,} samples ({getattr(ds.sample_type, '__name__', '?')})")
    for k in range(shown):
        url, _, key = ds.locate(k)
        emit("\n" + sample_text(ds[k], sample_header(k, total, key, url)))
    return 0


def _pick_split(splits: Any, split: str | None) -> Any:
    if split is not None:
        if split not in splits:
            raise UsageError(f"--split {split}: the dataset has the splits {', '.join(sorted(splits))}")
        return splits[split]
    return splits["train"] if "train" in splits else next(iter(splits.values()))
