"""Views of promotions: the plan (schema decision, records, data, cost, changes to what is
published, downgrades), verification reports, and what to do about an error.

Pure functions of their arguments (no widget, no I/O, no index): plans and reports are read
through their attributes only, so this module imports nothing of :mod:`atdata_lab.promotion`
(the promotion objects render through it). CSS classes are styled by
``widgets/promotion_wizard.css``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import (
    AtdataLabError,
    AuthenticationError,
    NoAtmosphereError,
    PDSUnavailableError,
    PromotionCancelled,
    PromotionConflictError,
    RateLimitedError,
    RecordTooLargeError,
    RecordValidationError,
)
from .network import appview_check_html
from .schema import diff_table_html, verdict_html
from .text import details_html, esc, html_table, list_html, record_json

__all__ = [
    "DATA_MODES",
    "cancelled_html",
    "changes_html",
    "data_html",
    "downgrades_html",
    "error_advice",
    "error_html",
    "identity_html",
    "intents_html",
    "plan_body_html",
    "plan_cost_line",
    "plan_data_lines",
    "plan_decision_line",
    "plan_head_html",
    "plan_html",
    "plan_writes_html",
    "publication_banner_html",
    "publish_ready_html",
    "publish_result_html",
    "steps_html",
    "verification_badge",
    "verification_rows",
    "verify_advice_html",
    "CONFIRM_LABEL",
    "ui_words",
    "verify_html",
    "verify_result_html",
    "validation_html",
]

#: The data choices of a promotion (``copy_to=``), as a person reads them.
DATA_MODES = {
    "published": "Keep the published storage",
    "keep": "Keep the current URLs",
    "copy": "Copy to a store",
    "blobs": "Upload as PDS blobs",
}


#: The label of the wizard's checkbox that re-plans with the arguments the downgrades name.
CONFIRM_LABEL = "Remove/downgrade these on purpose"

# The library's messages name its arguments; the wizard shows the names of its own controls.
_UI_WORDS = (
    ("copy_to=S3DataStore(...) / 'blobs'", f"“{DATA_MODES['copy']}” / “{DATA_MODES['blobs']}”"),
    ("(copy_to=S3DataStore(...))", f"(“{DATA_MODES['copy']}”)"),
    ("(copy_to='blobs')", f"(“{DATA_MODES['blobs']}”)"),
    ("copy_to=S3DataStore(...)", f"“{DATA_MODES['copy']}”"),
    ("copy_to='blobs'", f"“{DATA_MODES['blobs']}”"),
    ("downgrade=True", f"tick “{CONFIRM_LABEL}”"),
)


def ui_words(text: str) -> str:
    """A library message with the wizard's labels in place of the arguments it names:
    ``copy_to='blobs'`` -> “Upload as PDS blobs”, ``downgrade=True`` -> tick “Remove/downgrade
    these on purpose” (plain text: escape it after)."""
    for code, label in _UI_WORDS:
        text = text.replace(code, label)
    return text


# ---------------------------------------------------------------------------------------------
# plans
# ---------------------------------------------------------------------------------------------
def plan_decision_line(plan: Any) -> str:
    """``Reuse existing schema at://…`` / ``Publish new schema Name@1.0.0`` / ``Conflict: …``."""
    return plan.schema_decision.describe()


def plan_data_lines(plan: Any) -> list[str]:
    """The data action with its exact byte count, then the manifests published with it (each
    shard's blobs and their bytes)."""
    d = plan.data
    out = [f"{d.describe()} — {d.bytes:,} bytes in {d.shards} shard{'s' if d.shards != 1 else ''}"]
    m = getattr(plan, "manifests", None)
    if m is not None:
        out.append(m.describe())
        out += m.lines()
    return out


def data_html(plan: Any, *, ui: bool = False) -> str:
    """The Data step: the data action with its bytes, and its warnings (local paths nobody else can
    reach, shards over the server's blob limit; those that block publishing say so, once).
    ``ui``: in the wizard's words (:func:`ui_words`)."""
    words = ui_words if ui else str
    warn = []
    for w in plan.data.warnings:
        blocks = w in plan.blocking
        warn.append(
            f"<li class='atdata-data-warning{' atdata-data-blocking' if blocks else ''}'>"
            f"<span class='atdata-badge atdata-badge-{'error' if blocks else 'warn'}'>"
            f"{'blocks publishing' if blocks else 'warning'}</span> {esc(words(w))}</li>"
        )
    body = (
        f"<ul class='atdata-data-warnings'>{''.join(warn)}</ul>"
        if warn
        else "<p class='atdata-data-ok'>No warnings: the data will be reachable by others.</p>"
    )
    return list_html(plan_data_lines(plan), "atdata-plan-data") + body


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
        items.append(
            details_html(
                f"{w.action} {kind} record {w.uri}",
                f"<pre>{esc(record_json(w.value))}</pre>",
                f"atdata-plan-write atdata-plan-write-{kind}",
            )
        )
    return "".join(items)


def plan_head_html(plan: Any) -> str:
    """The schema decision (and "already published"): ``Reuse existing schema at://…`` /
    ``Publish new schema Name@1.0.0`` / ``Conflict: …`` with the suggested version."""
    d = plan.schema_decision
    parts = []
    if plan.already_published:
        parts.append(
            f"<p class='atdata-plan-already'>Already published: <code>{esc(plan.already_published)}</code>"
            " — nothing will be written.</p>"
        )
    parts.append(
        f"<h4>Schema</h4><p class='atdata-plan-schema atdata-plan-schema-{d.action}' "
        f"data-action='{d.action}'>{esc(plan_decision_line(plan))}</p>"
    )
    if d.action == "conflict" and d.suggested_version:
        parts.append(
            f"<p class='atdata-plan-suggested'>Suggested version: <code>{esc(d.suggested_version)}</code></p>"
        )
    parts.append(appview_check_html(getattr(plan, "appview", None)))
    return "".join(parts)


def plan_body_html(plan: Any, *, ui: bool = False) -> str:
    """The exact records (collapsed JSON), the data action with its bytes, the cost, warnings, and
    what blocks publishing (each message once). ``ui``: in the wizard's words (:func:`ui_words`)."""
    words = ui_words if ui else str
    blocking = list(plan.blocking)
    warnings = [w for w in (*plan.warnings, *plan.data.warnings) if w not in blocking]
    return "".join(
        [
            f"<h4>Records</h4><div class='atdata-plan-writes'>{plan_writes_html(plan)}</div>",
            "<h4>Data</h4>" + list_html(plan_data_lines(plan), "atdata-plan-data"),
            f"<h4>Cost</h4><p class='atdata-plan-cost'>{esc(plan_cost_line(plan))}</p>",
            list_html([words(w) for w in warnings], "atdata-plan-warnings"),
            list_html([words(b) for b in blocking], "atdata-plan-blocking"),
        ]
    )


def _value_text(value: Any) -> str:
    if value is None or value == [] or value == {} or value == "":
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def changes_html(plan: Any) -> str:
    """What is published now, and each record the plan rewrites, field by field (``plan.changes``),
    or the new version it makes of the name (previous -> new)."""
    out = []
    if plan.published is not None:
        out.append(
            f"<h4>Published now</h4><p class='atdata-plan-published'><code>{esc(plan.published.describe())}"
            "</code></p>"
        )
    for c in plan.changes:
        if c.action == "version":
            out.append(
                f"<h4>New version</h4><p class='atdata-plan-version'>{esc(plan.name)}: "
                f"<code>{esc(c.previous)}</code> → <code>{esc(c.uri)}</code></p>"
            )
        else:
            out.append(f"<h4>Changes</h4><p class='atdata-plan-update'>Update <code>{esc(c.uri)}</code></p>")
        rows = "".join(
            f"<tr class='atdata-change' data-field='{esc(f.field)}'><td><code>{esc(f.field)}</code></td>"
            f"<td>{esc(_value_text(f.old))}</td><td>{esc(_value_text(f.new))}</td></tr>"
            for f in c.fields
        )
        if rows:
            out.append(
                "<table class='atdata-table atdata-changes-table'><thead><tr><th>field</th><th>published</th>"
                f"<th>after Publish</th></tr></thead><tbody>{rows}</tbody></table>"
            )
    return f"<div class='atdata-plan-changes'>{''.join(out)}</div>" if out else ""


def intents_html(intents: Sequence[str]) -> str:
    """What a plan removes or weakens in the published record on purpose (``plan.intents``)."""
    return (
        "<p><span class='atdata-badge atdata-badge-warn'>on purpose</span> Publish removes or weakens "
        "these in the published record, as you confirmed:</p><ul class='atdata-intents'>"
        + "".join(f"<li>{esc(i)}</li>" for i in intents)
        + "</ul>"
    )


def downgrades_html(downgrades: list[Any], *, at: str = "preview", ui: bool = False) -> str:
    """Each :class:`~atdata_lab.promotion.Downgrade` (field, published -> new) and the argument that
    says it on purpose; ``at="data"`` adds that Preview asks to confirm it. ``ui``: in the wizard's
    words (:func:`ui_words`)."""
    words = ui_words if ui else str
    items = "".join(
        f"<li class='atdata-downgrade' data-field='{esc(d.field)}'><code>{esc(d.field)}</code>: "
        f"<span class='atdata-downgrade-old'>{esc(words(d.old))}</span> → <span class='atdata-downgrade-new'>"
        f"{esc(words(d.new))}</span> <span class='atdata-muted'>(on purpose: {esc(words(d.argument))})</span></li>"
        for d in downgrades
    )
    tail = (
        "<p class='atdata-muted'>Preview asks you to confirm it. To keep what is published, choose "
        "“Keep the published storage” (and keep the Describe fields filled).</p>"
        if at == "data"
        else "<p class='atdata-muted'>Nothing is written unless you confirm: tick the box to do it on purpose, "
        "or go Back and keep what is published.</p>"
    )
    return (
        "<p><span class='atdata-badge atdata-badge-warn'>removes or weakens what is published</span> "
        "This would change what others get from the published record:</p>"
        f"<ul class='atdata-downgrade-list'>{items}</ul>{tail}"
    )


def plan_html(plan: Any, *, include_diff: bool = True) -> str:
    """The whole plan (a plan's ``_repr_html_``): what is promoted where, the schema decision, what
    it changes in what is published, the exact records, the data action, the cost, the warnings.

    Args:
        include_diff: Inline the conflict's schema diff (the widget embeds a SchemaDiff instead).
    """
    d = plan.schema_decision
    diff = ""
    if include_diff and d.action == "conflict" and d.diff is not None:
        diff = verdict_html(d.diff) + diff_table_html(d.diff, "published", "local")
    title = (
        f"<p class='atdata-plan-title'>Promote <code>{esc(plan.entry.name)}</code> as "
        f"<code>{esc(plan.name)}</code> to <code>{esc(plan.handle or plan.did)}</code></p>"
    )
    intents = intents_html(plan.intents) if plan.intents else ""
    return (
        f"<div class='atdata-plan' data-action='{d.action}'>{title}{plan_head_html(plan)}{changes_html(plan)}"
        f"{intents}{diff}{plan_body_html(plan)}</div>"
    )


def steps_html(steps: Sequence[str], titles: dict[str, str], current: str, done: set[str]) -> str:
    """The step indicator: numbered steps, the current one marked (``aria-current``), done ones ticked."""
    items = []
    for i, s in enumerate(steps, 1):
        cls = f"atdata-step atdata-step-{s}"
        if s == current:
            cls += " atdata-step-current"
        elif s in done:
            cls += " atdata-step-done"
        aria = " aria-current='step'" if s == current else ""
        items.append(f"<li class='{cls}'{aria}><span class='atdata-step-num'>{i}</span> {titles[s]}</li>")
    return f"<ol class='atdata-steps'>{''.join(items)}</ol>"


# ---------------------------------------------------------------------------------------------
# the wizard's cards
# ---------------------------------------------------------------------------------------------
def identity_html(handle: str | None, did: str | None, pds_url: str | None) -> str:
    """Who is connected (the Connect step); ``did=None``: nobody, log in."""
    if not did:
        return (
            "<div class='atdata-muted'>No account is attached to this index: log in with "
            "your handle and an app password.</div>"
        )
    return (
        f"<div class='atdata-card atdata-identity'>Connected as <strong>@{esc(handle)}</strong> "
        f"(<code>{esc(did)}</code>) on <code>{esc(pds_url)}</code></div>"
    )


def validation_html(message: str) -> str:
    """The Describe step's verdict: ``valid``, or ``invalid`` with the engine's message."""
    if message:
        return (
            f"<div class='atdata-invalid'><span class='atdata-badge atdata-badge-error'>invalid"
            f"</span> {esc(message)}</div>"
        )
    return "<div class='atdata-valid'><span class='atdata-badge atdata-badge-ok'>valid</span></div>"


def publication_banner_html(
    entry_name: str, pub: Any, *, storage: str = "", who: str = "this account"
) -> str:
    """The banner over every step when the entry is already published: by the attached account
    (``storage``: what is published now, when read), by another account, or unknown (nobody is
    logged in); ``""`` when it is not published. ``pub`` is a :class:`~atdata_lab.views.entries.Publication`."""
    if pub.mine:
        now = f" ({esc(storage)})" if storage else ""
        return (
            f"<div class='atdata-card atdata-already'><span class='atdata-badge atdata-badge-info'>already "
            f"published</span> <strong>{esc(entry_name)}</strong> is already published at "
            f"<code>{esc(pub.uri)}</code>{now}. Publishing again starts from what is published: its fields "
            "and storage are kept unless you change them, an unchanged entry writes nothing, and Preview "
            "shows every change field by field before anything is written.</div>"
        )
    if pub.uri:
        return (
            f"<div class='atdata-card atdata-already atdata-other-account'><span class='atdata-badge "
            f"atdata-badge-warn'>{esc(pub.state)}</span> <strong>{esc(entry_name)}</strong> was published "
            f"by <code>{esc(pub.did)}</code> (<code>{esc(pub.uri)}</code>), "
            + (
                f"not by {esc(who)}: publishing creates {esc(who)}'s own records."
                if pub.state == "other account"
                else "and no account is attached: log in to see whether it is yours."
            )
            + "</div>"
        )
    return ""


def publish_ready_html(plan: Any) -> str:
    """The Publish step before publishing: what Publish will do (or that it writes nothing)."""
    if plan.already_published:
        return (
            f"<div class='atdata-card atdata-already'>Already published at <code>{esc(plan.already_published)}"
            "</code>, unchanged: it will not be published twice. Publish writes nothing and verifies it "
            "(so does Next).</div>"
        )
    return f"<div class='atdata-muted'>Ready: {esc(plan_decision_line(plan))}; {esc(plan_cost_line(plan))}.</div>"


def publish_result_html(result: Any) -> str:
    """What Publish did (a :class:`~atdata_lab.promotion.PromotionResult`)."""
    if result.already_published:
        return (
            f"<div class='atdata-card atdata-published'><span class='atdata-badge atdata-badge-info'>already "
            f"published</span> <code>{esc(result.at_uri)}</code>: unchanged, nothing was written</div>"
        )
    return (
        f"<div class='atdata-card atdata-published'><span class='atdata-badge atdata-badge-ok'>published"
        f"</span> <code>{esc(result.at_uri)}</code> ({len(result.written)} records written"
        f"{', schema reused' if result.schema_reused else ''})</div>"
    )


def cancelled_html(exc: BaseException) -> str:
    """Publishing was cancelled before any record was written."""
    return (
        f"<div class='atdata-card atdata-publish-cancelled'><strong>Cancelled.</strong> {esc(exc)}. "
        f"{esc(error_advice(exc))}</div>"
    )


# ---------------------------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------------------------
def verification_rows(report: Any) -> list[dict[str, str]]:
    """Rows of a :class:`~atdata_lab.promotion.VerificationReport`: check, ok/failed, detail."""
    return [
        {"check": name, "status": "ok" if ok else "failed", "detail": detail}
        for name, ok, detail in report.checks
    ]


def verify_html(report: Any, uris: dict[str, str] | None = None) -> str:
    """Each check with ok/FAIL in words, the at:// URIs, and the ``load_dataset(...)`` line (a
    report's ``_repr_html_``)."""
    rows = "".join(
        f"<tr class='atdata-verify-check atdata-verify-{'ok' if ok else 'fail'}'><td>{'✔ ok' if ok else '✘ FAIL'}</td>"
        f"<td>{esc(name)}</td><td>{esc(detail)}</td></tr>"
        for name, ok, detail in report.checks
    )
    if report.ok:
        verdict = "All checks passed"
    elif report.only_here:
        verdict = "Only loadable on this machine (every other check passed)"
    else:
        verdict = "Failed: " + ", ".join(report.failed)
    out = [
        f"<p class='atdata-verify-verdict'>{esc(verdict)} for <code>{esc(report.uri)}</code></p>",
        f"<table class='atdata-table atdata-verify-table'><thead><tr><th>result</th><th>check</th><th>detail</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>",
    ]
    if uris:
        out.append(
            "<ul class='atdata-verify-uris'>"
            + "".join(f"<li>{esc(k)}: <code>{esc(v)}</code></li>" for k, v in uris.items() if v)
            + "</ul>"
        )
    if report.load_line:
        out.append(f"<p>Share it:</p><pre class='atdata-verify-load'>{esc(report.load_line)}</pre>")
    return "".join(out)


def verify_advice_html(report: Any, uris: dict[str, str] | None = None) -> str:
    """:func:`verify_html`, with what to do next when only this machine can load the data (the
    wizard's Verify step)."""
    body = verify_html(report, uris)
    if not report.only_here:
        return body
    card = (
        "<div class='atdata-card atdata-verify-only-here'><span class='atdata-badge atdata-badge-warn'>only "
        "loadable on this machine</span> The records are published and every other check passed, but nobody "
        "else can load the data. To share it, go Back to Data, choose “Upload as PDS blobs” "
        "or “Copy to a store” others can reach, and publish again.</div>"
    )
    return card + body


def verification_badge(report: Any) -> str:
    """The verdict of a :class:`~atdata_lab.promotion.VerificationReport` as a badge: ``verified``;
    ``only loadable on this machine`` when that is the one failed check (the records are right, but
    the data is at file paths or a loopback address nobody else reaches); else ``verification failed``."""
    if report.ok:
        return "<span class='atdata-badge atdata-badge-ok'>verified</span>"
    if report.failed == ["loadable by others"]:
        return (
            "<span class='atdata-badge atdata-badge-warn'>only loadable on this machine</span> "
            "<span class='atdata-muted'>every other check passed</span>"
        )
    failed = ", ".join(report.failed)
    return f"<span class='atdata-badge atdata-badge-error'>verification failed</span> {esc(failed)}"


def verify_result_html(report: Any) -> str:
    """The badge, a table of the checks, and the load line (the index browser's Verify)."""
    rows = verification_rows(report)
    table = html_table(
        ["check", "", "detail"],
        [
            [
                esc(r["check"]),
                f"<span class='atdata-badge atdata-badge-{'ok' if r['status'] == 'ok' else 'error'}'>"
                f"{esc(r['status'])}</span>",
                esc(r["detail"]),
            ]
            for r in rows
        ],
        raw=True,
        css_class="atdata-index-browser-verify-table",
    )
    load = f"<div>Load it with: <code>{esc(report.load_line)}</code></div>" if report.load_line else ""
    return f"<div>{verification_badge(report)}</div>{table}{load}"


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def _is_cancelled(exc: BaseException) -> bool:
    return isinstance(exc, PromotionCancelled)


def error_advice(exc: BaseException) -> str:
    """What to do next about an error raised while connecting, planning or publishing."""
    if _is_cancelled(exc):
        said = "nothing was published" in str(exc).lower()  # the library's message says it already
        return ("" if said else "Nothing was published. ") + (
            "Click Publish to try again, or Back to change the inputs."
        )
    if isinstance(exc, AuthenticationError):
        return "Check the handle and the app password (create an app password in your account settings), then log in again."
    if isinstance(exc, PDSUnavailableError):
        return (
            "Check the PDS URL and that the server is running (for the local sandbox: "
            "atdata-lab sandbox start), then try again."
        )
    if isinstance(exc, RateLimitedError):
        reset = getattr(exc, "reset_at", None)
        return f"The PDS is rate-limiting this account: wait{' until ' + str(reset) if reset else ''} and try again."
    if isinstance(exc, NoAtmosphereError):
        return "Log in first (step Connect)."
    if isinstance(exc, PromotionConflictError):
        v = getattr(exc, "suggested_version", None)
        return (
            f"Store the schema under a new version (index.publish_schema(SampleType, version={v!r})), "
            "re-write the entry, then open the wizard again."
        )
    if isinstance(exc, RecordTooLargeError):
        return "Re-write the dataset with smaller shards (maxsize=), or copy the data to a store instead of blobs."
    if isinstance(exc, RecordValidationError):
        return "Fix the field named in the message (step Describe), then try again."
    if isinstance(exc, KeyError):
        return "The entry or its schema is no longer in the index: pick another dataset (step Dataset)."
    if isinstance(exc, AtdataLabError):
        return "Fix the problem named in the message, then try again."
    return (
        "This is unexpected: the message says what failed; please report it with the traceback from the log."
    )


def error_html(exc: BaseException, doing: str) -> str:
    """A readable error: what failed, the message, and what to do next."""
    msg = str(exc) or type(exc).__name__
    return (
        f"<div class='atdata-error-body'><strong>{esc(doing)} failed: {esc(type(exc).__name__)}</strong>"
        f"<p class='atdata-error-message'>{esc(msg)}</p>"
        f"<p class='atdata-error-advice'>What to do next: {esc(error_advice(exc))}</p></div>"
    )
