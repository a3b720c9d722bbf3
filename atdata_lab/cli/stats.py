"""``atdata-lab stats TARGET`` and ``atdata-lab compare A B``: each field's statistics over a whole
dataset, and two datasets' statistics side by side with what differs.

TARGET, A and B are as for ``inspect`` (shard files, ``@local/NAME``, ``at://...``,
``@handle/NAME``). The statistics come from :func:`atdata_lab.column_stats.dataset_stats` (the
manifests when every shard has one, else one pass over the samples); the text from
:mod:`atdata_lab.views.column_stats`.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._common import add_index_option, emit, index_spec, open_index, optional_index, target_kind

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``stats`` and ``compare`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "stats",
        help="each field's statistics over the whole dataset (counts, nulls, ranges, top values, shapes)",
        description="Per-field statistics of a dataset: from its manifests when every shard has one, "
        "else by one pass over the samples. TARGET as for inspect.",
    )
    p.add_argument("target", metavar="TARGET")
    p.add_argument(
        "--split", default=None, help="which split of shard files (default: train, else the first)"
    )
    p.add_argument("--scan", action="store_true", help="read the samples even when manifests exist")
    add_index_option(p)
    p.set_defaults(func=_cmd_stats)

    c = sub.add_parser(
        "compare",
        help="two datasets' field statistics side by side, and what differs",
        description="Compare the per-field statistics of two datasets (splits, versions). A and B as "
        "TARGET for inspect.",
    )
    c.add_argument("a", metavar="A")
    c.add_argument("b", metavar="B")
    c.add_argument(
        "--split", default=None, help="which split of shard files (default: train, else the first)"
    )
    add_index_option(c)
    c.set_defaults(func=_cmd_compare)


def _dataset(target: str, index_arg: str | None, split: str | None) -> Any:
    from atdata_lab.load import load_dataset

    from .datasets import _load_path, _pick_split

    kind = target_kind(target)
    if kind == "path":
        splits = _load_path(target, load_dataset)
    else:
        index = open_index(index_spec(index_arg)) if kind == "local" else optional_index(index_arg)
        splits = load_dataset(target, index=index)
    return _pick_split(splits, split)


def _cmd_stats(args: argparse.Namespace) -> int:
    from atdata_lab.column_stats import dataset_stats
    from atdata_lab.views.column_stats import dataset_stats_text

    ds = _dataset(args.target, args.index, args.split)
    st = dataset_stats(ds, source="scan" if args.scan else "auto")
    emit(f"{args.target}: " + dataset_stats_text(st))
    if st.source == "manifest":
        emit("(fields the manifests leave out, such as arrays and bytes, are measured with --scan)")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from atdata_lab.column_stats import compare_stats, dataset_stats
    from atdata_lab.views.column_stats import stats_comparison_text

    a = dataset_stats(_dataset(args.a, args.index, args.split))
    b = dataset_stats(_dataset(args.b, args.index, args.split))
    emit(stats_comparison_text(compare_stats(a, b, a_label=args.a, b_label=args.b)))
    return 0
