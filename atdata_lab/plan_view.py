"""Text and HTML views of schema comparisons, promotion plans, entries and verification reports.

The :class:`~atdata_lab.widgets.schema_diff.SchemaDiff` and
:class:`~atdata_lab.widgets.promotion_wizard.PromotionWizard` widgets show exactly what these
functions return, and the same HTML is their static ``_repr_html_`` fallback. Everything here is a
pure function of library objects (no ipywidgets), except :func:`resolve_side`, which reads a
published schema record when it is given an ``at://`` URI.

CSS classes (styled by ``widgets/schema_diff.css`` and ``widgets/promotion_wizard.css`` with
JupyterLab's ``--jp-*`` variables, so light and dark themes both work): every diff row carries
``atdata-diff-row atdata-diff-<status>``, and the status is always written out as text as well,
so nothing depends on colour alone.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .entry import IndexEntry, human_bytes
from .errors import (
    AtdataLabError,
    AuthenticationError,
    InvalidArgumentError,
    NoAtmosphereError,
    PDSUnavailableError,
    PromotionConflictError,
    RateLimitedError,
    RecordTooLargeError,
    RecordValidationError,
)
from .schema_diff import ResolvedSchema as SchemaSide  # noqa: F401 (the library resolves now)
from .schema_diff import SchemaComparison, SchemaDiff, compare_schemas  # noqa: F401
from .schema_diff import resolve_schema as resolve_side  # noqa: F401

__all__ = [
    "DATA_MODES",
    "DIFF_COLUMNS",
    "DiffRow",
    "SchemaComparison",
    "SchemaSide",
    "check_describe",
    "compare_schemas",
    "comparison_html",
    "copy_target",
    "data_html",
    "diff_rows",
    "diff_table_html",
    "entry_option_label",
    "entry_summary_html",
    "error_advice",
    "error_html",
    "plan_cost_line",
    "plan_data_lines",
    "plan_decision_line",
    "plan_body_html",
    "plan_head_html",
    "plan_html",
    "plan_writes_html",
    "record_json",
    "resolve_side",
    "verdict_line",
    "verify_html",
]

DIFF_COLUMNS = ("field", "left", "right", "status")
_e = html.escape


# ---------------------------------------------------------------------------------------------
# schema comparison
# ---------------------------------------------------------------------------------------------


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
    return [DiffRow(f.name, f.left.describe() if f.left else "", f.right.describe() if f.right else "", f.status,
                    tuple(f.changes)) for f in diff.fields]


_VERDICT_WORDS = {
    "identical": "Identical: the schemas match; keep version {v}",
    "compatible": "Compatible: only optional fields were added; use version {v} next",
    "breaking": "Breaking: readers of the old schema would fail; use version {v} next",
}


def verdict_line(diff: SchemaDiff) -> str:
    """One sentence: the verdict and the semantic version to use next."""
    return _VERDICT_WORDS[diff.verdict].format(v=diff.next_version)


def record_json(record: Any) -> str:
    """A record as indented JSON (the exact values; non-JSON values as their ``str``)."""
    return json.dumps(record, indent=2, ensure_ascii=False, default=str)


def diff_table_html(diff: SchemaDiff, left_title: str = "left", right_title: str = "right") -> str:
    """The side-by-side table: columns field, left, right, status; one coloured row per field."""
    head = "".join(f"<th class='atdata-diff-col-{c}'>{_e(c)}</th>" for c in DIFF_COLUMNS)
    caption = f"<caption>left: {_e(left_title)} &nbsp;·&nbsp; right: {_e(right_title)}</caption>"
    body = []
    for r in diff_rows(diff):
        body.append(
            f"<tr class='atdata-diff-row atdata-diff-{r.status}' data-field='{_e(r.field)}' data-status='{r.status}'>"
            f"<td class='atdata-diff-field'><code>{_e(r.field)}</code></td>"
            f"<td class='atdata-diff-left'>{_e(r.left) or '&mdash;'}</td>"
            f"<td class='atdata-diff-right'>{_e(r.right) or '&mdash;'}</td>"
            f"<td class='atdata-diff-status'>{_e(r.status_text)}</td></tr>")
    notes = "".join(f"<p class='atdata-diff-note'>{_e(n)}</p>" for n in diff.notes)
    return (f"<table class='atdata-table atdata-diff-table'>{caption}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{notes}")


def _verdict_html(diff: SchemaDiff) -> str:
    return (f"<div class='atdata-diff-verdict atdata-verdict-{diff.verdict}' data-verdict='{diff.verdict}' "
            f"data-next-version='{_e(diff.next_version)}'><strong>{_e(diff.verdict)}</strong> &mdash; "
            f"{_e(verdict_line(diff))}</div>")


def _details(summary: str, body: str, cls: str) -> str:
    return f"<details class='{cls}'><summary>{_e(summary)}</summary>{body}</details>"


def comparison_html(cmp: SchemaComparison) -> str:
    """The whole comparison as static HTML: verdict, table, and both raw records (collapsed)."""
    return (
        "<div class='atdata-schema-diff-static'>"
        f"{_verdict_html(cmp.diff)}"
        f"{diff_table_html(cmp.diff, cmp.left.title, cmp.right.title)}"
        + _details(f"left record: {cmp.left.title}", f"<pre>{_e(record_json(cmp.left.record))}</pre>",
                   "atdata-diff-record atdata-diff-record-left")
        + _details(f"right record: {cmp.right.title}", f"<pre>{_e(record_json(cmp.right.record))}</pre>",
                   "atdata-diff-record atdata-diff-record-right")
        + "</div>")


# ---------------------------------------------------------------------------------------------
# entries
# ---------------------------------------------------------------------------------------------


def entry_option_label(entry: IndexEntry) -> str:
    """One line for a list of entries: samples, size, schema, and whether it is published."""
    from .summaries import entry_row

    r = entry_row(entry)
    return (f"{r['name']} — {r['samples']} samples · {r['shards']} shards · {r['size']} · {r['schema']} · "
            f"{'published' if entry.published_uri else 'not published'}")


def entry_summary_html(entry: IndexEntry) -> str:
    """A short card for one entry (the wizard's selected dataset)."""
    rows = [("samples", entry.num_samples), ("shards", entry.num_shards), ("size", human_bytes(entry.size_bytes)),
            ("schema", entry.schema_ref), ("tags", ", ".join(entry.tags) or "—"), ("license", entry.license or "—"),
            ("published", entry.published_uri or "no")]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(str(v))}</td></tr>" for k, v in rows)
    return f"<table class='atdata-entry-card' data-entry='{_e(entry.name)}'><caption>{_e(entry.name)}</caption>{body}</table>"


# ---------------------------------------------------------------------------------------------
# describe / data inputs
# ---------------------------------------------------------------------------------------------


def check_describe(name: str, description: str | None, tags: list[str] | None, license: str | None,
                   metadata: dict[str, Any] | None = None) -> str | None:
    """``None`` when the inputs pass the engine's lexicon checks, else the engine's message.

    Empty description and license count as "none". The checks are
    :func:`atdata_lab.promotion.validate_promotion_inputs`, the very ones ``plan_promotion`` runs.
    """
    from .promotion import validate_promotion_inputs

    try:
        validate_promotion_inputs(name, description or None, list(tags or []), license or None, metadata)
    except (RecordValidationError, ValueError) as e:
        return str(e)
    return None


DATA_MODES = {
    "published": "Keep the published storage",
    "keep": "Keep the current URLs",
    "copy": "Copy to a store",
    "blobs": "Upload as PDS blobs",
}


def copy_target(mode: str, location: str | None = None, store: Any = None) -> Any:
    """The ``copy_to=`` argument of :meth:`Index.plan_promotion` for a data choice.

    Args:
        mode: ``published`` (None: what is published, else the current URLs), ``keep``
            (``"keep"``: the current URLs), ``copy`` (a data store) or ``blobs`` (``"blobs"``).
        location: For ``copy`` without ``store``: a local folder (a :class:`LocalDiskStore` root)
            or ``s3://bucket/prefix`` (an ``S3DataStore``; endpoint and credentials from the
            ``AWS_*`` environment variables).
        store: For ``copy``: a :class:`~atdata_lab.stores.base.DataStore` to copy into.

    Raises:
        ValueError: an unknown mode, or ``copy`` with neither a store nor a folder.
    """
    if mode == "published":
        return None
    if mode in ("keep", "blobs"):
        return mode
    if mode != "copy":
        raise InvalidArgumentError(f"data mode must be one of {', '.join(DATA_MODES)}, not {mode!r}")
    if store is not None:
        return store
    loc = (location or "").strip()
    if not loc:
        raise InvalidArgumentError("copy to a store: give the folder to copy the shards into (or pass store=)")
    if loc.startswith("s3://"):
        from .stores.s3 import S3DataStore

        bucket, _, prefix = loc[len("s3://"):].partition("/")
        return S3DataStore(bucket, prefix=prefix)
    if "://" in loc and not loc.startswith("file://"):
        raise InvalidArgumentError(f"{loc!r}: type a local folder or s3://bucket/prefix here, or pass store= from code")
    from .stores.local import LocalDiskStore

    return LocalDiskStore(Path(os.path.expanduser(loc[7:] if loc.startswith("file://") else loc)))


# ---------------------------------------------------------------------------------------------
# promotion plans
# ---------------------------------------------------------------------------------------------


def plan_decision_line(plan: Any) -> str:
    """``Reuse existing schema at://…`` / ``Publish new schema Name@1.0.0`` / ``Conflict: …``."""
    return plan.schema_decision.describe()


def plan_data_lines(plan: Any) -> list[str]:
    """The data action with its exact byte count, then its warnings."""
    d = plan.data
    return [f"{d.describe()} — {d.bytes:,} bytes in {d.shards} shard{'s' if d.shards != 1 else ''}"]


def data_html(plan: Any) -> str:
    """The Data step: the data action with its bytes, and its warnings (local paths nobody else can
    reach, shards over the server's blob limit; those that block publishing say so)."""
    warn = []
    for w in plan.data.warnings:
        blocks = w in plan.blocking
        warn.append(f"<li class='atdata-data-warning{' atdata-data-blocking' if blocks else ''}'>"
                    f"<span class='atdata-badge atdata-badge-{'error' if blocks else 'warn'}'>"
                    f"{'blocks publishing' if blocks else 'warning'}</span> {_e(w)}</li>")
    body = f"<ul class='atdata-data-warnings'>{''.join(warn)}</ul>" if warn else \
        "<p class='atdata-data-ok'>No warnings: the data will be reachable by others.</p>"
    return _list(plan_data_lines(plan), "atdata-plan-data") + body


def plan_cost_line(plan: Any) -> str:
    """``1 PDS call, 9 rate-limit points``."""
    n = plan.pds_calls
    return f"{n} PDS call{'s' if n != 1 else ''}, {plan.rate_limit_points} rate-limit points"


def plan_writes_html(plan: Any) -> str:
    """Each record that will be written, its JSON in a collapsed pane."""
    if not plan.writes:
        return "<p class='atdata-plan-nowrites'>No records will be written.</p>"
    items = []
    for w in plan.writes:
        kind = w.collection.rsplit(".", 1)[-1]
        items.append(_details(f"{w.action} {kind} record {w.uri}", f"<pre>{_e(record_json(w.value))}</pre>",
                              f"atdata-plan-write atdata-plan-write-{kind}"))
    return "".join(items)


def _list(items: list[str], cls: str) -> str:
    if not items:
        return ""
    return f"<ul class='{cls}'>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def plan_head_html(plan: Any) -> str:
    """The schema decision (and "already published"): ``Reuse existing schema at://…`` /
    ``Publish new schema Name@1.0.0`` / ``Conflict: …`` with the suggested version."""
    d = plan.schema_decision
    parts = []
    if plan.already_published:
        parts.append(f"<p class='atdata-plan-already'>Already published: <code>{_e(plan.already_published)}</code>"
                     " — nothing will be written.</p>")
    parts.append(f"<h4>Schema</h4><p class='atdata-plan-schema atdata-plan-schema-{d.action}' "
                 f"data-action='{d.action}'>{_e(plan_decision_line(plan))}</p>")
    if d.action == "conflict" and d.suggested_version:
        parts.append(f"<p class='atdata-plan-suggested'>Suggested version: <code>{_e(d.suggested_version)}</code></p>")
    return "".join(parts)


def plan_body_html(plan: Any) -> str:
    """The exact records (collapsed JSON), the data action with its bytes, the cost, warnings."""
    return "".join([
        f"<h4>Records</h4><div class='atdata-plan-writes'>{plan_writes_html(plan)}</div>",
        "<h4>Data</h4>" + _list(plan_data_lines(plan), "atdata-plan-data"),
        f"<h4>Cost</h4><p class='atdata-plan-cost'>{_e(plan_cost_line(plan))}</p>",
        _list(list(plan.warnings) + list(plan.data.warnings), "atdata-plan-warnings"),
        _list(list(plan.blocking), "atdata-plan-blocking"),
    ])


def plan_html(plan: Any, *, include_diff: bool = True) -> str:
    """The dedup preview: schema decision, exact records, data action, cost. Nothing else.

    Args:
        include_diff: Inline the conflict's schema diff (the widget embeds a SchemaDiff instead).
    """
    d = plan.schema_decision
    diff = ""
    if include_diff and d.action == "conflict" and d.diff is not None:
        diff = _verdict_html(d.diff) + diff_table_html(d.diff, "published", "local")
    return (f"<div class='atdata-plan' data-action='{d.action}'>{plan_head_html(plan)}{diff}"
            f"{plan_body_html(plan)}</div>")


# ---------------------------------------------------------------------------------------------
# verification, errors
# ---------------------------------------------------------------------------------------------


def verify_html(report: Any, uris: dict[str, str] | None = None) -> str:
    """Each check with ok/FAIL in words, the at:// URIs, and the ``load_dataset(...)`` line."""
    rows = "".join(
        f"<tr class='atdata-verify-check atdata-verify-{'ok' if ok else 'fail'}'><td>{'✔ ok' if ok else '✘ FAIL'}</td>"
        f"<td>{_e(name)}</td><td>{_e(detail)}</td></tr>" for name, ok, detail in report.checks)
    if report.ok:
        verdict = "All checks passed"
    elif report.only_here:
        verdict = "Only loadable on this machine (every other check passed)"
    else:
        verdict = "Failed: " + ", ".join(report.failed)
    out = [f"<p class='atdata-verify-verdict'>{_e(verdict)} for <code>{_e(report.uri)}</code></p>",
           f"<table class='atdata-table atdata-verify-table'><thead><tr><th>result</th><th>check</th><th>detail</th></tr>"
           f"</thead><tbody>{rows}</tbody></table>"]
    if uris:
        out.append("<ul class='atdata-verify-uris'>" + "".join(
            f"<li>{_e(k)}: <code>{_e(v)}</code></li>" for k, v in uris.items() if v) + "</ul>")
    if report.load_line:
        out.append(f"<p>Share it:</p><pre class='atdata-verify-load'>{_e(report.load_line)}</pre>")
    return "".join(out)


def error_advice(exc: BaseException) -> str:
    """What to do next about an error raised while connecting, planning or publishing."""
    from .promotion import PromotionCancelled

    if isinstance(exc, PromotionCancelled):
        return "Nothing was published. Click Publish to try again, or Back to change the inputs."
    if isinstance(exc, AuthenticationError):
        return "Check the handle and the app password (create an app password in your account settings), then log in again."
    if isinstance(exc, PDSUnavailableError):
        return ("Check the PDS URL and that the server is running (for the local sandbox: "
                "atdata-lab sandbox start), then try again.")
    if isinstance(exc, RateLimitedError):
        reset = getattr(exc, "reset_at", None)
        return f"The PDS is rate-limiting this account: wait{' until ' + str(reset) if reset else ''} and try again."
    if isinstance(exc, NoAtmosphereError):
        return "Log in first (step Connect)."
    if isinstance(exc, PromotionConflictError):
        v = getattr(exc, "suggested_version", None)
        return (f"Store the schema under a new version (index.publish_schema(SampleType, version={v!r})), "
                "re-write the entry, then open the wizard again.")
    if isinstance(exc, RecordTooLargeError):
        return "Re-write the dataset with smaller shards (maxsize=), or copy the data to a store instead of blobs."
    if isinstance(exc, RecordValidationError):
        return "Fix the field named in the message (step Describe), then try again."
    if isinstance(exc, KeyError):
        return "The entry or its schema is no longer in the index: pick another dataset (step Dataset)."
    if isinstance(exc, AtdataLabError):
        return "Fix the problem named in the message, then try again."
    return "This is unexpected: the message says what failed; please report it with the traceback from the log."


def error_html(exc: BaseException, doing: str) -> str:
    """A readable error: what failed, the message, and what to do next."""
    msg = str(exc) or type(exc).__name__
    return (f"<div class='atdata-error-body'><strong>{_e(doing)} failed: {_e(type(exc).__name__)}</strong>"
            f"<p class='atdata-error-message'>{_e(msg)}</p>"
            f"<p class='atdata-error-advice'>What to do next: {_e(error_advice(exc))}</p></div>")
