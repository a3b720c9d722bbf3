"""Views of schemas and schema comparisons: field rows, the side-by-side diff table, the verdict,
and the schemas a schema can be compared with.

Pure functions of their arguments (no widget, no I/O, no index). CSS classes (styled by
``widgets/schema_diff.css`` with JupyterLab's ``--jp-*`` variables, so light and dark themes both
work): every diff row carries ``atdata-diff-row atdata-diff-<status>``, and the status is always
written out as text as well, so nothing depends on colour alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..schema import version_key
from .text import (
    badge_html,
    details_html,
    dtype_text,
    esc,
    html_table,
    kv_text,
    record_json,
    schema_label,
    text_table,
)

if TYPE_CHECKING:
    from ..schema_diff import ResolvedSchema, SchemaComparison, SchemaDiff

__all__ = [
    "DIFF_COLUMNS",
    "DiffRow",
    "comparison_html",
    "comparison_text",
    "comparison_title_html",
    "diff_candidates",
    "diff_rows",
    "diff_table_html",
    "schema_field_rows",
    "schema_fields_html",
    "schema_text",
    "schema_unavailable_html",
    "side_title",
    "verdict_badge_html",
    "verdict_html",
    "verdict_line",
]

DIFF_COLUMNS = ("field", "left", "right", "status")


# ---------------------------------------------------------------------------------------------
# one schema
# ---------------------------------------------------------------------------------------------
def schema_field_rows(schema: Any) -> list[dict[str, str]]:
    """One row per field of a :class:`~atdata_lab.schema.Schema`: name, kind, dtype, shape, optional."""
    rows = []
    for f in schema.fields:
        t = f.type
        kind = t.describe() if t.kind == "list" else t.kind
        shape = ""
        if t.kind == "ndarray" and t.shape is not None:
            shape = (
                "("
                + ", ".join("?" if s is None else str(s) for s in t.shape)
                + (",)" if len(t.shape) == 1 else ")")
            )
        rows.append(
            {
                "name": f.name,
                "kind": kind,
                "dtype": (dtype_text(t.dtype) or "any") if t.kind == "ndarray" else "",
                "shape": shape,
                "optional": "yes" if f.optional else "no",
            }
        )
    return rows


def schema_fields_html(schema: Any) -> str:
    """A schema's title and one table row per field (the index browser's detail panel)."""
    rows = schema_field_rows(schema)
    return (
        f"<div class='atdata-section-title'>Schema {esc(schema.name)}@{esc(schema.version)}</div>"
        + html_table(
            ["field", "kind", "dtype", "shape", "optional"],
            [[r["name"], r["kind"], r["dtype"], r["shape"], r["optional"]] for r in rows],
            css_class="atdata-index-browser-fields-table",
        )
    )


def schema_text(schema: Any, source: str = "") -> str:
    """A schema as plain text: ``Schema Name@version``, where it came from, its description, and
    one aligned row per field (:func:`schema_field_rows`)."""
    rows = schema_field_rows(schema)
    head = kv_text(
        [
            (k, v)
            for k, v in (
                ("Schema", f"{schema.name}@{schema.version}"),
                ("From", source),
                ("Description", getattr(schema, "description", None) or ""),
                ("Fields", str(len(rows))),
            )
            if v
        ]
    )
    table = text_table(
        ["field", "kind", "dtype", "shape", "optional"],
        [[r["name"], r["kind"], r["dtype"], r["shape"], r["optional"]] for r in rows],
        indent="  ",
    )
    return f"{head}\n\n{table}" if rows else head


def schema_unavailable_html(ref: str, error: BaseException) -> str:
    """Why a schema cannot be shown (the entry stays usable without it)."""
    return (
        f"<div class='atdata-section-title'>Schema {esc(ref)}</div>"
        f"<div class='atdata-empty'>schema not available: {esc(error)}</div>"
    )


def diff_candidates(schema_records: Iterable[dict[str, Any]], ref: str) -> list[tuple[str, str]]:
    """What the schema ``ref`` can be compared with, best first, as ``(label, ref or at:// URI)``.

    ``schema_records`` is ``index.list_schemas()``. The published record of ``ref`` itself comes
    first, then the other versions of the same name, newest first (local ref, and its published
    record when it has one).
    """
    records = list(schema_records)
    name = next((r.get("name") for r in records if r.get("$ref") == ref), None)
    if name is None:
        name = schema_label(ref).rpartition("@")[0] or None
    out: list[tuple[str, str]] = []
    for r in records:
        if r.get("$ref") == ref and r.get("publishedUri"):
            out.append((f"{schema_label(ref)} as published ({r['publishedUri']})", r["publishedUri"]))
    others = [r for r in records if r.get("name") == name and r.get("$ref") != ref]
    others.sort(key=lambda r: version_key(str(r.get("version", ""))), reverse=True)
    for r in others:
        out.append((f"{name}@{r.get('version')} (local)", r["$ref"]))
        if r.get("publishedUri"):
            out.append((f"{name}@{r.get('version')} as published ({r['publishedUri']})", r["publishedUri"]))
    return out


# ---------------------------------------------------------------------------------------------
# a comparison
# ---------------------------------------------------------------------------------------------
def side_title(side: ResolvedSchema) -> str:
    """``FeatureSample@1.0.0 (local schema atdata://local/schema/...)``."""
    where = f" {side.where}" if side.where and side.where != side.label else ""
    return f"{side.label} ({side.source}{where})"


@dataclass(frozen=True)
class DiffRow:
    """One row of the side-by-side table.

    Attributes:
        field: The field name.
        left, right: ``Field.describe()`` on each side; ``""`` where the field is absent.
        status: ``added``, ``removed``, ``changed`` or ``unchanged``.
        changes: What changed, precisely (``dtype <f4 -> <f8``, ``optional -> required``,
            ``list item type int -> str``, ``kind int -> str``).
    """

    field: str
    left: str
    right: str
    status: str
    changes: tuple[str, ...] = ()

    @property
    def status_text(self) -> str:
        """The status as words: ``changed: dtype <f4 -> <f8``."""
        return f"{self.status}: {'; '.join(self.changes)}" if self.changes else self.status


def diff_rows(diff: SchemaDiff) -> list[DiffRow]:
    """The rows of the side-by-side table, in the diff's order."""
    return [
        DiffRow(
            f.name,
            f.left.describe() if f.left else "",
            f.right.describe() if f.right else "",
            f.status,
            tuple(f.changes),
        )
        for f in diff.fields
    ]


_VERDICT_WORDS = {
    "identical": "Identical: the schemas match; keep version {v}",
    "compatible": "Compatible: only optional fields were added; use version {v} next",
    "breaking": "Breaking: readers of the old schema would fail; use version {v} next",
}
_VERDICT_BADGES = {"identical": "ok", "compatible": "info", "breaking": "error"}


def verdict_line(diff: SchemaDiff) -> str:
    """One sentence: the verdict and the semantic version to use next."""
    return _VERDICT_WORDS[diff.verdict].format(v=diff.next_version)


def diff_table_html(
    diff: SchemaDiff, left_title: str = "left", right_title: str = "right", *, caption: bool = True
) -> str:
    """The side-by-side table: columns field, left, right, status; one coloured row per field.
    ``caption=False`` when a title above already names the sides (the widget)."""
    head = "".join(f"<th class='atdata-diff-col-{c}'>{esc(c)}</th>" for c in DIFF_COLUMNS)
    caption_html = (
        f"<caption>left: {esc(left_title)} &nbsp;·&nbsp; right: {esc(right_title)}</caption>"
        if caption
        else ""
    )
    body = []
    for r in diff_rows(diff):
        body.append(
            f"<tr class='atdata-diff-row atdata-diff-{r.status}' data-field='{esc(r.field)}' data-status='{r.status}'>"
            f"<td class='atdata-diff-field'><code>{esc(r.field)}</code></td>"
            f"<td class='atdata-diff-left'>{esc(r.left) or '&mdash;'}</td>"
            f"<td class='atdata-diff-right'>{esc(r.right) or '&mdash;'}</td>"
            f"<td class='atdata-diff-status'>{esc(r.status_text)}</td></tr>"
        )
    notes = "".join(f"<p class='atdata-diff-note'>{esc(n)}</p>" for n in diff.notes)
    return (
        f"<table class='atdata-table atdata-diff-table'>{caption_html}<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>{notes}"
    )


def _verdict_div(diff: SchemaDiff, label: str) -> str:
    return (
        f"<div class='atdata-diff-verdict atdata-verdict-{diff.verdict}' data-verdict='{diff.verdict}' "
        f"data-next-version='{esc(diff.next_version)}'>{label}{esc(verdict_line(diff))}</div>"
    )


def verdict_html(diff: SchemaDiff) -> str:
    """The verdict in words with the next version (static HTML)."""
    return _verdict_div(diff, f"<strong>{esc(diff.verdict)}</strong> &mdash; ")


def verdict_badge_html(diff: SchemaDiff) -> str:
    """The verdict as a coloured badge, then in words (the SchemaDiff widget's verdict line)."""
    return _verdict_div(diff, badge_html(diff.verdict, _VERDICT_BADGES[diff.verdict]) + " ")


def comparison_title_html(cmp: SchemaComparison) -> str:
    """The comparison's one title: ``Name@1.0.0 → Name@1.1.0`` (each side as ``Name@version``),
    then where each side came from in words (the ref, URI or class on hover)."""

    def source(side: str, r: ResolvedSchema) -> str:
        where = r.where if r.where and r.where != r.label else ""
        return f"<span class='atdata-diff-source' title='{esc(where)}'>{side}: {esc(r.source)}</span>"

    return (
        f"<div class='atdata-section-title atdata-diff-title'>{esc(cmp.left.label)} &rarr; "
        f"{esc(cmp.right.label)}</div><div class='atdata-muted atdata-diff-sources'>"
        f"{source('left', cmp.left)} &nbsp;·&nbsp; {source('right', cmp.right)}</div>"
    )


def comparison_text(cmp: SchemaComparison) -> str:
    """A comparison as plain text: both sides, one row per field (:func:`diff_rows`), the notes,
    then the verdict and the next version on lines of their own."""
    diff = cmp.diff
    table = text_table(
        list(DIFF_COLUMNS),
        [[r.field, r.left or "-", r.right or "-", r.status_text] for r in diff_rows(diff)],
        indent="  ",
    )
    notes = "".join(f"\nnote: {n}" for n in diff.notes)
    tail = kv_text([("Verdict", diff.verdict), ("Next version", diff.next_version)])
    return (
        kv_text([("left", cmp.left.title), ("right", cmp.right.title)])
        + f"\n\n{table}{notes}\n\n{verdict_line(diff)}\n{tail}"
    )


def comparison_html(cmp: SchemaComparison) -> str:
    """The whole comparison as static HTML: verdict, table, and both raw records (collapsed)."""
    return (
        "<div class='atdata-schema-diff-static'>"
        f"{verdict_html(cmp.diff)}"
        f"{diff_table_html(cmp.diff, cmp.left.title, cmp.right.title)}"
        + details_html(
            f"left record: {cmp.left.title}",
            f"<pre>{esc(record_json(cmp.left.record))}</pre>",
            "atdata-diff-record atdata-diff-record-left",
        )
        + details_html(
            f"right record: {cmp.right.title}",
            f"<pre>{esc(record_json(cmp.right.record))}</pre>",
            "atdata-diff-record atdata-diff-record-right",
        )
        + "</div>"
    )
