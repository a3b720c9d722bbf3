"""``atdata-lab schema show TARGET`` and ``atdata-lab schema diff A B``.

A schema TARGET is a local schema ref (``atdata://local/schema/Name@1.0.0``), a schema name in
the index (``Name``: its newest version, or ``Name@1.0.0``), an ``at://`` schema URI, or a
dataset: ``@local/NAME``, ``at://`` (an entry) or ``@handle/NAME``. Every side is resolved by
:func:`atdata_lab.schema_diff.resolve_schema` (THE schema resolver) and compared by
:func:`~atdata_lab.schema_diff.compare_schemas`; the text comes from :mod:`atdata_lab.views.schema`.
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

__all__ = ["register", "resolve_target_schema"]

_TARGETS = (
    "TARGET: a schema ref (atdata://local/schema/Name@1.0.0), a schema name in the index (Name or "
    "Name@1.0.0), an at:// schema URI, or a dataset (@local/NAME, at://... entry, @handle/NAME)."
)


def register(sub: Any) -> None:
    """Add ``schema show`` and ``schema diff`` to the subcommands ``sub``."""
    p = sub.add_parser("schema", help="show a schema, or compare two (verdict and next version)")
    s_sub = p.add_subparsers(dest="action", required=True)

    show = s_sub.add_parser(
        "show", help="fields, kinds, dtypes, shapes and version of a schema", description=_TARGETS
    )
    show.add_argument("target", metavar="TARGET")
    add_index_option(show)
    show.set_defaults(func=_cmd_show)

    diff = s_sub.add_parser(
        "diff",
        help="compare schema A (older) with B (newer): the verdict and the next semantic version",
        description="Compare A (older) with B (newer) field by field. " + _TARGETS,
    )
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    add_index_option(diff)
    diff.set_defaults(func=_cmd_diff)


def _cmd_show(args: argparse.Namespace) -> int:
    from atdata_lab.views.schema import schema_text

    side = resolve_target_schema(args.target, args.index)
    emit(schema_text(side.schema, f"{side.source} {side.where}".strip()))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from atdata_lab.schema_diff import compare_schemas
    from atdata_lab.views.schema import comparison_text

    left = resolve_target_schema(args.a, args.index)
    right = resolve_target_schema(args.b, args.index)
    emit(comparison_text(compare_schemas(left, right)))
    return 0


def resolve_target_schema(target: str, index_arg: str | None) -> Any:
    """The :class:`~atdata_lab.schema_diff.ResolvedSchema` a TARGET names (see the module)."""
    from atdata_lab.atmosphere import records as rec
    from atdata_lab.schema import SCHEMA_REF_PREFIX
    from atdata_lab.schema_diff import ResolvedSchema, resolve_schema

    if target.startswith((SCHEMA_REF_PREFIX, "local://")):
        return resolve_schema(target, open_index(index_spec(index_arg)))
    kind = target_kind(target)
    if kind == "local":
        index = open_index(index_spec(index_arg))
        return resolve_schema(index.get_entry_by_name(split_local(target)), index)
    if kind == "published":
        from atdata_lab.promotion.published import get_published_entry, resolve_entry_uri

        index = optional_index(index_arg)
        if target.startswith("at://") and rec.AtUri.parse(target).collection == rec.SCHEMA_NSID:
            return resolve_schema(target, index)
        uri = resolve_entry_uri(published_atmosphere(index), target)
        entry = get_published_entry(index, uri)
        side = resolve_schema(entry.schema_ref, index)
        return ResolvedSchema(side.label, "published dataset", uri, side.schema, side.record)
    if os.path.exists(target) or any(c in target for c in "/*?[{") or "://" in target:
        raise UsageError(
            f"{target!r:.200}: shard files carry no schema (atdata-lab inspect shows the fields of their "
            "first sample); name a schema, or a dataset of the index (@local/NAME) or a published one"
        )
    return resolve_schema(_schema_ref_by_name(target, index_arg), open_index(index_spec(index_arg)))


def _schema_ref_by_name(target: str, index_arg: str | None) -> str:
    """The ref of ``Name@version``, or of the newest version of ``Name``, in the index."""
    from atdata_lab.errors import SchemaNotFoundError
    from atdata_lab.schema import version_key

    index = open_index(index_spec(index_arg))
    name, _, version = target.partition("@")
    records = index.list_schemas()
    found = [r for r in records if r.get("name") == name and (not version or r.get("version") == version)]
    if not found:
        names = sorted({f"{r.get('name')}@{r.get('version')}" for r in records})
        have = ", ".join(names[:20]) + (f" (and {len(names) - 20} more)" if len(names) > 20 else "")
        raise SchemaNotFoundError(
            f"no schema {target!r:.200} in the index" + (f"; it has {have}" if have else "; it has none")
        )
    return str(max(found, key=lambda r: version_key(str(r.get("version", ""))))["$ref"])
