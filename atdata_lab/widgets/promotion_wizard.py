"""``PromotionWizard``: publish a local dataset to the AT Protocol network, step by step.

Steps: Connect, Dataset, Describe, Data, Preview, Publish, Verify. Back and Cancel are there at
every step and the input survives Back and Next. The wizard holds no promotion logic: it collects
the options, asks :meth:`Index.plan_promotion` for the plan (the very call
:meth:`Index.promote_entry` makes), shows that :class:`~atdata_lab.promotion.PromotionPlan` and
nothing else, and runs :meth:`PromotionPlan.execute` off the UI thread with a progress bar and a
cancel event. Validation is :func:`~atdata_lab.promotion.check_describe` (the engine's own
:func:`~atdata_lab.promotion.validate_promotion_inputs`); the text shown comes from
:mod:`atdata_lab.views.promotion`.

Every button has a programmatic twin::

    w = PromotionWizard(index)
    w.login("alice.example.com", app_password)     # Connect (skipped when index.atmosphere is set)
    w.next(); w.select_entry("feature-vectors-v1"); w.next()
    w.set_description(description="...", tags=["features"], license="MIT"); w.next()
    w.set_data("keep"); w.next()                     # Preview: w.plan is index.plan_promotion(...)
    w.confirm_downgrades()                           # only when the plan would remove/weaken published things
    w.next(); w.publish()                            # then Verify runs: w.report
    w.back(); w.cancel()

The wizard starts from what is published: choosing a dataset (once connected) asks
:meth:`Index.plan_promotion` (nothing is written) for the values a promotion would publish, and
Describe is pre-filled with them (the local entry's, else the published record's); the Data step
then defaults to "Keep the published storage" (``copy_to=None``). A choice that would remove a
published field or weaken the published storage makes the plan raise
:class:`~atdata_lab.errors.PromotionDowngradeError`: Preview lists each downgrade and Publish
stays disabled until "Remove/downgrade these on purpose" re-plans with the ``clear=[...]`` /
``downgrade=True`` that :meth:`Index.promote_entry` would need too. "Published" means published
by the attached account (an entry's ``published_uri`` names a DID).

The app password lives only in the Password widget until Log in is clicked; the click handler
reads it and clears the widget in a ``finally`` before anything else happens. It is never kept in
an attribute, a log record, an error message or the index.

CSS classes: root ``atdata-promotion-wizard``; the step indicator ``atdata-promotion-wizard-steps``
(items ``atdata-step-<step>``, ``atdata-step-current``, ``atdata-step-done``); each step's pane
``atdata-promotion-wizard-step-<step>``; navigation ``-back``, ``-next``, ``-cancel``; and the
parts named in :meth:`PromotionWizard._build` (``-handle``, ``-password``, ``-pds-url``,
``-login``, ``-identity``, ``-search``, ``-entries``, ``-entry-card``, ``-name``, ``-description``,
``-tags``, ``-license``, ``-validation``, ``-data-mode``, ``-store``, ``-data-info``,
``-decision``, ``-downgrades``, ``-downgrade-list``, ``-confirm``, ``-changes``, ``-diff``, ``-plan``,
``-publish``, ``-progress``, ``-publish-info``, ``-checks``, ``-verify``, ``-open-browser``,
``-already``, ``-cancelled``, ``-restart``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets
import traitlets

from .. import views
from ..entry import IndexEntry
from ..errors import (
    AtdataLabError,
    AuthenticationError,
    BusyError,
    InvalidArgumentError,
    PromotionDowngradeError,
)
from ..licenses import spdx_ids
from ..progress import ProgressEvent
from ..promotion import (
    PROMOTED_FIELDS,
    PromotionCancelled,
    check_describe,
    copy_target,
    describe_storage,
    entry_publication,
)
from ..views import Publication
from ._base import AtdataWidget, BackgroundTask, ProgressBar, Scroller, esc
from .schema_diff import SchemaDiffViewer

__all__ = ["PromotionWizard", "STEPS", "DATA_CHOICES"]

#: The Data step's choices -> ``copy_to=``: ``published`` None (the published storage; offered when
#: something is published under the name), ``keep`` "keep", ``copy`` a store, ``blobs`` "blobs".
DATA_CHOICES = views.DATA_MODES  # the Data step's choices ("published" only once something is)

STEPS = ("connect", "dataset", "describe", "data", "preview", "publish", "verify")
STEP_TITLES = {
    "connect": "Connect",
    "dataset": "Dataset",
    "describe": "Describe",
    "data": "Data",
    "preview": "Preview",
    "publish": "Publish",
    "verify": "Verify",
}


#: The login form's label column (room for "App password") and field width.
_LABEL_WIDTH = "110px"
_FIELD_WIDTH = "420px"


def _button(description: str, **kwargs: Any) -> ipywidgets.Button:
    return ipywidgets.Button(description=description, layout=ipywidgets.Layout(width="auto"), **kwargs)


class PromotionWizard(AtdataWidget):
    """Promote a local entry to the index's atmosphere, step by step.

    Args:
        index: The :class:`~atdata_lab.index.Index` holding the entry. Its ``atmosphere`` is the
            account to publish to (set by the Connect step when missing).
        entry: The entry to promote (name or :class:`IndexEntry`); it can be chosen later.
        browser: An :class:`~atdata_lab.widgets.index_browser.IndexBrowser` to return to from the
            Verify step (default: a new ``index.browse()`` on its Published tab).

    Attributes:
        entry: The selected :class:`IndexEntry`.
        published: The :class:`~atdata_lab.promotion.PublishedEntry` published under the name by the
            attached account, as the library's plan read it (None: nothing is published).
        downgrades: The :class:`~atdata_lab.promotion.Downgrade` list of the last plan that was
            refused (:class:`~atdata_lab.errors.PromotionDowngradeError`); empty otherwise.
        plan: The :class:`~atdata_lab.promotion.PromotionPlan` shown in Preview (None before).
        result: The :class:`~atdata_lab.promotion.PromotionResult` once published.
        report: The :class:`~atdata_lab.promotion.VerificationReport` of the Verify step.
    """

    _root_class = "atdata-promotion-wizard"
    _css_files = ("atdata.css", "schema_diff.css", "promotion_wizard.css")

    step = traitlets.Unicode("connect", help="The step shown: " + ", ".join(STEPS) + ".")
    status = traitlets.Unicode(
        "",
        help="What the wizard is doing or did last: '', connecting, connected, reading what is published, "
        "checking data, planning, planned, needs confirmation, publishing, cancelling, published, already "
        "published, cancelled, verifying, verified, 'verified, only loadable on this machine' (every check "
        "passed but 'loadable by others'), closed, or '<action> failed'.",
    )
    busy = traitlets.Bool(
        False,
        help="True while work runs in the background (login, reading what is published, "
        "planning, publishing, verifying); Next is disabled meanwhile.",
    )
    can_next = traitlets.Bool(
        False, help="Whether Next is enabled: the current step's input is valid and nothing is running."
    )
    validation = traitlets.Unicode(
        "",
        help="The Describe step's validation message ('' when the input is valid); "
        "the engine's own lexicon checks.",
    )
    published_uri = traitlets.Unicode(
        "", help="The at:// URI of the dataset record once published (or already published)."
    )

    def __init__(
        self, index: Any, entry: str | IndexEntry | None = None, *, browser: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.browser = browser
        self.entry: IndexEntry | None = None
        self.plan: Any = None
        self.result: Any = None
        self.report: Any = None
        self.data_plan: Any = None
        self._store_obj: Any = None
        self.published: Any = None
        self.downgrades: list[Any] = []
        self._intent: tuple[Any, dict[str, Any]] | None = (
            None  # (inputs it was confirmed for, clear=/downgrade=)
        )
        self._auto: dict[str, Any] = {}  # the value the wizard last put in each input (user edits differ)
        self._data_chosen = False  # the data choice was made by the user (else it follows what is published)
        self._read_for: tuple[str, str, str] | None = None  # (entry, name, account) the published state is of
        self._read_task: BackgroundTask | None = None
        self._read_note = ""
        self._cancel_event = threading.Event()
        self._publishing = False
        self._done: set[str] = set()
        self._running = 0
        self._lock = threading.Lock()
        self._data_seq = 0
        self._quiet = False
        self._matches: list[IndexEntry] = []
        self._progress_subscribers: list[Callable[[ProgressEvent], Any]] = []
        self._quiet_confirm = False
        self._build()
        if entry is not None:
            self.select_entry(entry, wait=False)  # what is published is read in the background
        self._go("connect")

    # =========================================================================================
    # layout
    # =========================================================================================
    def _build(self) -> None:
        part = self.part
        self._indicator = part(ipywidgets.HTML(), "steps")
        self._already = part(ipywidgets.HTML(layout=ipywidgets.Layout(display="none")), "already")

        # 1. connect
        self._identity = part(ipywidgets.HTML(), "identity")
        self._handle = part(
            ipywidgets.Text(
                description="Handle",
                placeholder="alice.example.com",
                value=os.environ.get("ATDATA_HANDLE", ""),
            ),
            "handle",
        )
        self._password = part(
            ipywidgets.Password(description="App password", placeholder="xxxx-xxxx-xxxx-xxxx"), "password"
        )
        self._pds_url = part(
            ipywidgets.Text(
                description="PDS URL",
                value=os.environ.get("ATDATA_PDS_URL", ""),
                placeholder="empty: found from the handle",
            ),
            "pds-url",
        )
        for field in (self._handle, self._password, self._pds_url):  # labels in full, fields wide enough
            field.style.description_width = _LABEL_WIDTH
            field.layout.width = _FIELD_WIDTH
            # Enter in a field submits the form (the front end's "submit" message)
            field.on_msg(self._on_field_submit)
        self._login_btn = part(_button("Log in", button_style="primary", icon="sign-in"), "login")
        self.on_click(self._login_btn, self._on_login_click, "Logging in")
        self._switch_btn = part(_button("Use another account"), "switch-account")
        self.on_click(self._switch_btn, lambda _b: self._show_login_form(True), "Switching account")
        self._login_form = part(
            ipywidgets.VBox(
                [self._handle, self._password, self._pds_url, self._login_btn],
                layout=ipywidgets.Layout(align_items="flex-start"),  # the button as wide as its label
            ),
            "login-form",
        )
        connect = ipywidgets.VBox([self._identity, self._switch_btn, self._login_form])

        # 2. dataset
        self._search = part(
            ipywidgets.Text(
                description="Search", placeholder="name, description or tag", continuous_update=True
            ),
            "search",
        )
        self._search.observe(self.ui(lambda ch: self.search(ch["new"]), "Searching"), names="value")
        self._entries = part(
            ipywidgets.Select(options=[], rows=8, layout=ipywidgets.Layout(width="98%")), "entries"
        )
        self._entries.observe(self.ui(self._on_entry_pick, "Selecting the dataset"), names="value")
        self._entry_card = part(ipywidgets.HTML(), "entry-card")
        dataset = ipywidgets.VBox([self._search, self._entries, self._entry_card])

        # 3. describe
        self._name = part(ipywidgets.Text(description="Name"), "name")
        self._description = part(
            ipywidgets.Textarea(description="Description", rows=3, layout=ipywidgets.Layout(width="98%")),
            "description",
        )
        self._tags = part(ipywidgets.TagsInput(value=[], allow_duplicates=False), "tags")
        self._license = part(
            ipywidgets.Combobox(
                description="License",
                options=list(spdx_ids()),
                ensure_option=False,
                placeholder="MIT, CC-BY-4.0, Apache-2.0 …",
            ),
            "license",
        )
        self._validation = part(ipywidgets.HTML(), "validation")
        for w in (self._name, self._description, self._tags, self._license):
            w.observe(self.ui(lambda _ch: self.validate(), "Validating"), names="value")
        tags_row = ipywidgets.HBox(
            [ipywidgets.Label("Tags", layout=ipywidgets.Layout(width="90px")), self._tags]
        )
        describe = ipywidgets.VBox([self._name, self._description, tags_row, self._license, self._validation])

        # 4. data
        self._data_mode = part(
            ipywidgets.RadioButtons(
                options=[(label, key) for key, label in views.DATA_MODES.items() if key != "published"],
                value="keep",
                layout=ipywidgets.Layout(width="auto"),
            ),
            "data-mode",
        )
        self._store = part(
            ipywidgets.Text(
                description="Copy to",
                placeholder="a folder, or s3://bucket/prefix",
                continuous_update=False,
                layout=ipywidgets.Layout(display="none"),
            ),
            "store",
        )
        self._data_mode.observe(self.ui(self._on_data_change, "Choosing the data"), names="value")
        self._store.observe(self.ui(self._on_data_change, "Choosing the data"), names="value")
        self._data_info = part(ipywidgets.HTML(), "data-info")
        data = ipywidgets.VBox([self._data_mode, self._store, self._data_info])

        # 5. preview
        self._decision = part(ipywidgets.HTML(), "decision")
        self._downgrade_list = part(ipywidgets.HTML(), "downgrade-list")
        self._confirm = part(
            ipywidgets.Checkbox(
                value=False,
                indent=False,
                description=views.CONFIRM_LABEL,
                layout=ipywidgets.Layout(width="auto"),
            ),
            "confirm",
        )
        self._confirm.observe(self.ui(self._on_confirm_change, "Confirming"), names="value")
        self._downgrade_box = part(
            ipywidgets.VBox([self._downgrade_list, self._confirm], layout=ipywidgets.Layout(display="none")),
            "downgrades",
            "atdata-card",
        )
        self._changes = part(ipywidgets.HTML(), "changes")
        self._diff_box = part(ipywidgets.VBox(), "diff")
        self._plan_body = part(ipywidgets.HTML(), "plan")
        self._nothing_written = part(
            ipywidgets.HTML(
                "<p class='atdata-muted'>Nothing has been written yet: this is what Publish will do.</p>"
            ),
            "nothing-written",
        )
        preview = ipywidgets.VBox(
            [
                self._nothing_written,
                self._downgrade_box,
                self._decision,
                self._changes,
                self._diff_box,
                self._plan_body,
            ]
        )

        # 6. publish
        self._publish_btn = part(_button("Publish", button_style="success", icon="upload"), "publish")
        self.on_click(self._publish_btn, lambda _b: self.publish(wait=False), "Publishing")
        self._progress = part(ProgressBar(description="Publishing"), "progress")
        self._publish_info = part(ipywidgets.HTML(), "publish-info")
        publish = ipywidgets.VBox([self._publish_btn, self._progress, self._publish_info])

        # 7. verify
        self._checks = part(ipywidgets.HTML(), "checks")
        self._verify_btn = part(_button("Verify again", icon="check"), "verify")
        self.on_click(self._verify_btn, lambda _b: self.verify(wait=False), "Verifying")
        self._open_browser_btn = part(
            _button("Back to the index browser (Published tab)", icon="list"), "open-browser"
        )
        self.on_click(self._open_browser_btn, lambda _b: self.open_browser(), "Opening the index browser")
        self._browser_box = part(ipywidgets.VBox(), "browser")
        self._scroller = Scroller()  # brings the browser into view (it may be far above)
        verify = ipywidgets.VBox(
            [
                self._checks,
                ipywidgets.HBox([self._verify_btn, self._open_browser_btn]),
                self._browser_box,
                self._scroller,
            ]
        )

        self._panes = {
            "connect": connect,
            "dataset": dataset,
            "describe": describe,
            "data": data,
            "preview": preview,
            "publish": publish,
            "verify": verify,
        }
        for name, pane in self._panes.items():
            part(pane, f"step-{name}", "atdata-promotion-wizard-step")

        # cancelled
        self._restart_btn = part(_button("Start over"), "restart")
        self.on_click(self._restart_btn, lambda _b: self.restart(), "Starting over")
        self._cancelled_msg = ipywidgets.HTML()
        self._cancelled = part(ipywidgets.VBox([self._cancelled_msg, self._restart_btn]), "cancelled")

        # navigation
        self._back_btn = part(_button("Back", icon="arrow-left"), "back")
        self._next_btn = part(_button("Next", button_style="primary", icon="arrow-right"), "next")
        self._cancel_btn = part(_button("Cancel", icon="times"), "cancel")
        self.on_click(self._back_btn, lambda _b: self.back(), "Going back")
        self.on_click(self._next_btn, lambda _b: self.next(wait=False), "Going on")
        self.on_click(self._cancel_btn, lambda _b: self.cancel(), "Cancelling")
        self._nav = part(
            ipywidgets.HBox([self._back_btn, self._next_btn, self._cancel_btn]), "nav", "atdata-toolbar"
        )

        self.search("")
        self._render_connect()

    def _go(self, step: str) -> None:
        self.step = step
        self._render_banner()
        if step == "publish":
            self._render_publish()
        self.set_body(self._indicator, self._already, self._panes[step], self._nav)
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the step indicator and what Back / Next / Cancel allow."""
        self._indicator.value = views.steps_html(STEPS, STEP_TITLES, self.step, self._done)
        ok = not self.busy and self._step_ok(self.step)
        self.can_next = ok
        self._next_btn.disabled = not ok
        self._back_btn.disabled = self._publishing or self.step == STEPS[0]
        self._publish_btn.disabled = self._publishing or not self._can_publish()

    def _step_ok(self, step: str) -> bool:
        if step == "connect":
            return self._connected()
        if step == "dataset":
            return self.entry is not None
        if step == "describe":
            return self.entry is not None and not self.validation
        if (
            step == "data"
        ):  # a plan whose data blocks publishing (e.g. a shard over the blob limit) stops here
            return self._data_error() is None and not self._data_blocking()
        if step == "preview":
            return self._can_publish() or bool(self.plan is not None and self.plan.already_published)
        if step == "publish":
            return not self._publishing and (
                self.result is not None or bool(self.plan is not None and self.plan.already_published)
            )
        return False

    def _data_blocking(self) -> list[str]:
        """What of the checked data blocks publishing (in the wizard's words): the data's own
        blocking warnings only; a schema conflict is Preview's to resolve."""
        p = self.data_plan
        return [views.ui_words(b) for b in p.blocking if b in p.data.warnings] if p is not None else []

    def _why_not(self) -> str:
        step = self.step
        if self.busy:
            return f"wait: {self.status} is still running"
        if step == "connect":
            return "log in first (handle and app password)"
        if step == "dataset":
            return "choose a dataset first"
        if step == "describe":
            return self.validation or "choose a dataset first"
        if step == "data":
            blocking = self._data_blocking()
            return self._data_error() or ("publishing is blocked: " + "; ".join(blocking) if blocking else "")
        if step == "preview":
            if self.plan is None and self.downgrades:
                return (
                    "this would remove or weaken what is published ("
                    + "; ".join(d.describe() for d in self.downgrades)
                    + "): tick 'Remove/downgrade these on purpose' "
                    "(w.confirm_downgrades()) or go Back and change it"
                )
            if self.plan is None:
                return "the plan is not ready"
            return "publishing is blocked: " + "; ".join(self.plan.blocking)
        if step == "publish":
            return "publish first"
        return "this is the last step"

    # =========================================================================================
    # background work
    # =========================================================================================
    def _background(
        self,
        what: str,
        status: str,
        work: Callable[[BackgroundTask], Any],
        *,
        wait: bool,
        exclusive: bool = True,
    ) -> Any:
        """Run ``work`` off the UI thread; errors go to the panel (and are re-raised when ``wait``)."""
        with self._lock:
            if exclusive and self._running:
                raise BusyError(f"{self.status or 'something'} is still running: wait for it, or Cancel")
            self._running += 1
        self.busy = True
        self.status = status
        self._refresh()

        def fn(task: BackgroundTask) -> Any:
            try:
                with self.reporting(what):
                    return work(task)
            except Exception as e:
                task.failure = e  # type: ignore[attr-defined]
                self.status = f"{what.lower()} failed"
                return None
            finally:
                with self._lock:
                    self._running -= 1
                    self.busy = self._running > 0
                self._refresh()

        task = self.run_task(what, fn)
        if not wait:
            return task
        task.wait()
        failure = getattr(task, "failure", None)
        if failure is not None:
            raise failure
        return task.result

    def wait(self, timeout: float | None = 120) -> None:
        """Block until the work started by the buttons (login, checks, plan, publish, verify) is
        done. Errors are in the error panel, not raised."""
        for task in list(self._tasks):
            task.wait(timeout)

    def error_advice(self, exc: BaseException) -> str:
        return views.error_advice(exc)

    def on_progress(self, callback: Callable[[ProgressEvent], Any]) -> None:
        """Also send the publish step's progress events to ``callback`` (called in the worker thread)."""
        self._progress_subscribers.append(callback)

    def _report(self, event: ProgressEvent) -> None:
        self._progress(event)
        for cb in list(self._progress_subscribers):
            cb(event)

    # =========================================================================================
    # 1. connect
    # =========================================================================================
    def _connected(self) -> bool:
        atm = getattr(self.index, "atmosphere", None)
        return atm is not None and bool(getattr(atm, "did", None))

    def _render_connect(self) -> None:
        atm = getattr(self.index, "atmosphere", None)
        if self._connected():
            self._identity.value = views.identity_html(atm.handle, atm.did, atm.pds_url)
            self._show_login_form(False)
        else:
            self._identity.value = views.identity_html(None, None, None)
            self._show_login_form(True)
        self._switch_btn.layout.display = "flex" if self._connected() else "none"

    def _show_login_form(self, show: bool) -> None:
        self._login_form.layout.display = "flex" if show else "none"

    @property
    def identity(self) -> str:
        """``@handle (did) on pds_url`` of the attached atmosphere, or ``""``."""
        atm = getattr(self.index, "atmosphere", None)
        return f"@{atm.handle} ({atm.did}) on {atm.pds_url}" if self._connected() else ""

    def _on_field_submit(self, field: Any, content: Any, _buffers: Any) -> None:
        """Enter in the login form: log in as the button would, once a password is typed (Enter in
        the handle field before that moves on to nothing)."""
        if isinstance(content, dict) and content.get("event") == "submit" and self._password.value:
            with self.reporting("Logging in", reraise=False):
                self._on_login_click(field)

    def _on_login_click(self, _button: Any) -> None:
        # The password leaves the widget here, once: read, then cleared whatever happens.
        try:
            password = self._password.value
        finally:
            self._password.value = ""
        try:
            self.login(self._handle.value, password, self._pds_url.value, wait=False)
        finally:
            password = ""

    def login(self, handle: str, password: str, pds_url: str | None = None, *, wait: bool = True) -> Any:
        """Log in and attach the :class:`~atdata_lab.atmosphere.Atmosphere` to the index.

        The password is used for this one login and never kept (not in an attribute, a log
        record or an error). ``pds_url`` defaults to the PDS URL field (``ATDATA_PDS_URL``).

        Returns:
            The Atmosphere (``wait=True``), else the running :class:`BackgroundTask`.

        Raises:
            AuthenticationError: wrong handle or password (the message never contains it).
            PDSUnavailableError: the PDS cannot be reached.
        """
        if self._password.value:
            self._password.value = ""
        secret = [password]  # the worker pops it: no reference survives the attempt
        password = ""
        handle = (handle or "").strip().lstrip("@")
        pds = (pds_url if pds_url is not None else self._pds_url.value).strip() or None
        if pds_url is not None:
            self._pds_url.value = pds_url
        if handle:
            self._handle.value = handle

        def work(task: BackgroundTask) -> Any:
            from ..atmosphere import Atmosphere

            pw = secret.pop() if secret else ""
            secret.clear()
            try:
                if not handle:
                    raise AuthenticationError("type your handle (e.g. alice.bsky.social)")
                if not pw:
                    raise AuthenticationError("type your app password")
                atm = Atmosphere.login(handle, pw, pds_url=pds)
            except BaseException as e:
                pw = ""
                traceback.clear_frames(e.__traceback__)  # no frame keeps the password alive
                raise
            finally:
                pw = ""
            previous, self.index.atmosphere = self.index.atmosphere, atm
            if previous is not None and previous is not atm:
                previous.close()  # a re-login must not leak the old client's connections
            if getattr(previous, "did", None) != atm.did:
                self.result = self.report = None  # another account's publication is not this one's
            self.plan = self.data_plan = None
            self.downgrades = []
            self._render_connect()
            # what is published is per account: read it again for this one, and show it everywhere
            if self.entry is not None:
                self.entry = self.index.get_entry_by_name(self.entry.name)
                self._read_published_work()
            self._show_publication()
            self._refresh_browser()
            self.status = "connected"
            return atm

        return self._background("Logging in", "connecting", work, wait=wait)

    # =========================================================================================
    # 2. dataset
    # =========================================================================================
    def _publication(self, entry: IndexEntry | None = None) -> Publication:
        """Whether ``entry`` (default: the selected one) is published by the attached account."""
        entry = entry if entry is not None else self.entry
        return entry_publication(self.index, entry)

    def _option_label(self, entry: IndexEntry) -> str:
        base = views.entry_option_label(entry).rsplit(" · ", 1)[0]
        return f"{base} · {self._publication(entry).text}"

    def _card_html(self, entry: IndexEntry) -> str:
        pub = self._publication(entry)
        shown = entry if pub.mine or not pub.uri else dataclasses.replace(entry, published_uri=pub.text)
        card = views.entry_summary_html(shown)
        if self.published is not None:
            card += (
                f"<div class='atdata-muted atdata-published-now'>Published now under this name: "
                f"<code>{esc(self.published.describe())}</code></div>"
            )
        if self._read_note:
            card += f"<div class='atdata-muted atdata-read-note'>{esc(self._read_note)}</div>"
        return card

    def search(self, text: str = "") -> list[IndexEntry]:
        """Filter the list of local entries (name, description, tags); returns the matches."""
        if self._search.value != text:
            self._search.value = text  # the observer calls back here
            return self._matches
        page = self.index.search(text.strip() or None, limit=500, scope="local")
        self._matches = list(page)
        options = [(self._option_label(e), e.name) for e in page]
        current = self.entry.name if self.entry is not None else None
        if current is not None and current not in [n for _, n in options]:
            options.insert(0, (self._option_label(self.entry), current))
        self._entries.options = options
        self._entries.value = current
        return self._matches

    def _on_entry_pick(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if name is not None and (self.entry is None or name != self.entry.name):
            self.select_entry(name, wait=False)

    def _put(self, key: str, widget: Any, value: Any) -> None:
        """Set an input on the user's behalf (pre-fill); remembered so a later pre-fill leaves the
        user's own edits alone."""
        widget.value = value
        self._auto[key] = widget.value

    def _untouched(self, key: str, widget: Any) -> bool:
        return key in self._auto and widget.value == self._auto[key]

    def select_entry(self, entry: str | IndexEntry, *, wait: bool = True) -> IndexEntry:
        """Choose the dataset to promote (by name or entry). A different entry resets Describe to
        its values; the same one keeps what was typed. Once connected, what is published under the
        name is read (:meth:`read_published`) and pre-fills Describe and Data (``wait=False``: in the
        background, Next waits for it)."""
        name = entry.name if isinstance(entry, IndexEntry) else entry
        with self.reporting("Selecting the dataset"):
            fresh = self.index.get_entry_by_name(name)
            changed = self.entry is None or self.entry.name != fresh.name
            self.entry = fresh
            if changed:
                self.plan = self.data_plan = self.result = self.report = None
                self.published, self.downgrades, self._read_for, self._read_note = None, [], None, ""
                self._data_chosen = False
                self.published_uri = self._publication(fresh).uri if self._publication(fresh).mine else ""
                self._put("name", self._name, fresh.name)
                self._put("description", self._description, fresh.description or "")
                self._put("tags", self._tags, list(fresh.tags))
                self._put("license", self._license, fresh.license or "")
                self._set_data_choices()
            names = [n for _, n in self._entries.options]
            if fresh.name not in names:
                self._entries.options = [(self._option_label(fresh), fresh.name), *self._entries.options]
            self._entries.value = fresh.name
            self._entry_card.value = self._card_html(fresh)
            self._done.add("dataset")
            self.validate()
            self._render_banner()
            self._refresh()
        if changed and self._connected():
            task = self.read_published(wait=wait)
            if not wait:
                self._read_task = task
        return fresh

    def read_published(self, *, wait: bool = True) -> Any:
        """Read what is published under the name by the attached account, through the library's plan
        (``index.plan_promotion(entry, name=..., downgrade=True)``: nothing is written, and nothing is
        refused: it is only read), then pre-fill Describe with the plan's values (each field: the
        local entry's, else the published record's) and default Data to the published storage.
        Inputs the user changed are left alone. Returns :attr:`published`."""
        if self.entry is None:
            raise InvalidArgumentError("choose a dataset first")
        before = self.status

        def work(task: BackgroundTask) -> Any:
            self._read_published_work()
            if self.status == "reading what is published":
                self.status = before
            return self.published

        return self._background(
            "Reading what is published", "reading what is published", work, wait=wait, exclusive=False
        )

    def _read_published_work(self) -> None:
        """The read itself (in a worker thread): plan, then pre-fill from the plan."""
        entry = self.entry
        if entry is None or not self._connected():
            return
        name = self._name.value.strip() or entry.name
        account = self.index.atmosphere.did
        try:
            plan = self.index.plan_promotion(entry.name, name=name, downgrade=True)
        except (AtdataLabError, KeyError) as e:
            if self.entry is None or self.entry.name != entry.name:
                return  # another dataset was chosen meanwhile: its own read pre-fills
            # nothing to pre-fill from; Describe and Preview report the same problem where it belongs
            self.published, self._read_note = None, f"What is published could not be read: {e}"
        else:
            if self.entry is None or self.entry.name != entry.name:
                return
            self.published, self._read_note = plan.published, ""
            if self._untouched("description", self._description):
                self._put("description", self._description, plan.description or "")
            if self._untouched("tags", self._tags):
                self._put("tags", self._tags, list(plan.tags))
            if self._untouched("license", self._license):
                self._put("license", self._license, plan.license or "")
        self._read_for = (entry.name, name, account)
        self._set_data_choices()
        self._show_publication()

    def _await_read(self) -> None:
        """Programmatic calls wait for a pre-fill started in the background (never the worker itself)."""
        task = self._read_task
        if task is not None and not task.done and threading.current_thread() is not task.thread:
            task.wait(120)

    def _show_publication(self) -> None:
        """Show the selected entry's publication (per account) wherever the wizard shows it."""
        if self.entry is not None:
            pub = self._publication()
            if self.result is None:
                self.published_uri = pub.uri if pub.mine else ""
            self._entry_card.value = self._card_html(self.entry)
        self.search(self._search.value)
        self.validate()
        self._render_banner()
        self._refresh()

    def _refresh_browser(self) -> None:
        """The index browser(s) this wizard came from or opened show the new published state."""
        for b in (self.browser, *self._browser_box.children):
            if b is not None and hasattr(b, "refresh"):
                b.refresh()

    def _render_banner(self) -> None:
        pub = self._publication() if self.entry is not None and self.result is None else Publication("")
        atm = getattr(self.index, "atmosphere", None)
        storage = (
            describe_storage(self.published.storage)
            if pub.mine and self.published is not None and self.published.uri == pub.uri
            else ""
        )
        who = f"@{atm.handle}" if atm is not None and getattr(atm, "handle", None) else "this account"
        name = self.entry.name if self.entry is not None else ""
        self._already.value = views.publication_banner_html(name, pub, storage=storage, who=who)
        self._already.layout.display = "flex" if pub.uri else "none"

    # =========================================================================================
    # 3. describe
    # =========================================================================================
    def set_description(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: list[str] | None = None,
        license: str | None = None,
    ) -> str:
        """Fill the Describe step (arguments left out keep their value; ``""`` / ``[]`` empties a
        field: published, that is a removal Preview asks to confirm). Returns the validation
        message ("" when valid)."""
        self._await_read()
        if name is not None:
            self._name.value = name
        if description is not None:
            self._description.value = description
        if tags is not None:
            self._tags.value = list(tags)
        if license is not None:
            self._license.value = license
        return self.validate()

    def validate(self) -> str:
        """Check the Describe inputs with the engine's own lexicon checks; Next stays disabled
        until they pass. Returns the message ("" when valid)."""
        if self.entry is None:
            msg = "choose a dataset first"
        else:
            msg = (
                check_describe(
                    self._name.value.strip(),
                    self._description.value,
                    list(self._tags.value),
                    self._license.value.strip(),
                    self.entry.metadata,
                )
                or ""
            )
        self.validation = msg
        self._validation.value = views.validation_html(msg)
        self._refresh()
        return msg

    def _inputs_key(self) -> tuple[Any, ...]:
        """Everything the user chose: a confirmation holds for exactly these inputs."""
        atm = getattr(self.index, "atmosphere", None)
        return (
            self.entry.name if self.entry is not None else None,
            getattr(atm, "did", None),
            self._name.value.strip(),
            self._description.value,
            tuple(self._tags.value),
            self._license.value.strip(),
            self._data_mode.value,
            self._store.value,
            id(self._store_obj),
        )

    def _intent_options(self) -> dict[str, Any]:
        """``clear=`` / ``downgrade=`` confirmed for the current inputs ({} when none, or stale)."""
        if self._intent is not None and self._intent[0] == self._inputs_key():
            return dict(self._intent[1])
        return {}

    def promotion_options(self) -> dict[str, Any]:
        """The keyword arguments this wizard passes to :meth:`Index.plan_promotion` (and that
        :meth:`Index.promote_entry` would need for the same result). Each field is given as shown
        (pre-filled from the plan; an emptied field is ``""`` / ``[]``), plus ``clear=`` /
        ``downgrade=True`` once confirmed in Preview."""
        return {
            "name": self._name.value.strip(),
            "description": self._description.value,
            "tags": list(self._tags.value),
            "license": self._license.value.strip(),
            "copy_to": self.copy_to(),
            **self._intent_options(),
        }

    # =========================================================================================
    # 4. data
    # =========================================================================================
    def copy_to(self) -> Any:
        """The ``copy_to=`` for the data choice: ``published`` None (the published storage),
        ``keep`` ``"keep"`` (the current URLs), ``copy`` a store, ``blobs`` ``"blobs"``."""
        return copy_target(self._data_mode.value, self._store.value, self._store_obj)

    @property
    def data_choices(self) -> list[str]:
        """The Data step's choices offered now (``published`` only when something is published)."""
        return [key for _, key in self._data_mode.options]

    def _set_data_choices(self) -> None:
        """Offer "Keep the published storage" when something is published under the name, and make
        it the default until the user chooses."""
        pub = self.published
        choices = [
            (label if key != "published" else f"{label} ({describe_storage(pub.storage)})", key)
            for key, label in views.DATA_MODES.items()
            if key != "published" or pub is not None
        ]
        value = self._data_mode.value
        if not self._data_chosen or (value == "published" and pub is None):
            value = "published" if pub is not None else "keep"
        self._quiet = True
        try:
            if tuple(self._data_mode.options) != tuple(choices):
                self._data_mode.options = choices
            self._data_mode.value = value
        finally:
            self._quiet = False
        self._store.layout.display = "flex" if value == "copy" else "none"

    def _data_error(self) -> str | None:
        try:
            self.copy_to()
        except ValueError as e:
            return str(e)
        return None

    def set_data(
        self, mode: str, location: str | None = None, *, store: Any = None, wait: bool = True
    ) -> Any:
        """Choose what happens to the data: ``published`` keep the published storage (offered when
        something is published; the default then), ``keep`` the current URLs, ``copy`` to a folder or
        ``s3://bucket/prefix`` (``location``) or a ``store``, or upload as PDS ``blobs``. Then checks
        it (warnings for local paths nobody else can reach, shards over the server's blob limit, and
        what it would remove or weaken of the published record)."""
        self._await_read()
        if mode not in DATA_CHOICES:
            raise InvalidArgumentError(f"data mode must be one of {', '.join(DATA_CHOICES)}, not {mode!r}")
        if mode not in self.data_choices:
            raise InvalidArgumentError(
                f"nothing is published under {self._name.value.strip()!r} by this account: "
                "choose keep, copy or blobs"
            )
        self._data_chosen = True
        self._quiet = True  # set both fields, then check once
        try:
            self._data_mode.value = mode
            if location is not None:
                self._store.value = location
        finally:
            self._quiet = False
        self._store_obj = store
        self.data_plan = None
        return self.check_data(wait=wait)

    def _on_data_change(self, change: dict[str, Any]) -> None:
        self._store.layout.display = "flex" if self._data_mode.value == "copy" else "none"
        if self._quiet:
            return
        self._data_chosen = True
        if change["owner"] is self._store:
            self._store_obj = None  # a folder typed in the UI replaces a store given from code
        self.data_plan = None
        if self.step == "data":
            self.check_data(wait=False)
        else:
            self._refresh()

    def check_data(self, *, wait: bool = True) -> Any:
        """Plan with the current choice and show the data action and its warnings."""
        err = self._data_error()
        self._store.layout.display = "flex" if self._data_mode.value == "copy" else "none"
        if err is not None:
            self._data_info.value = f"<div class='atdata-invalid'>{esc(err)}</div>"
            self._refresh()
            return None
        if self.entry is None or not self._connected() or self.validation:
            self._refresh()
            return None
        self._data_seq += 1
        seq = self._data_seq
        options = self.promotion_options()
        self._data_info.value = "<div class='atdata-muted'>Checking the data…</div>"

        def work(task: BackgroundTask) -> Any:
            nonlocal options
            if self._read_for != (
                self.entry.name,
                options["name"] or self.entry.name,
                self.index.atmosphere.did,
            ):
                self._read_published_work()  # another name (or account): what is published under it
                options = self.promotion_options()
            try:
                plan = self.index.plan_promotion(self.entry.name, **options)
            except PromotionDowngradeError as e:
                plan = None
                info = views.downgrades_html(e.downgrades, at="data", ui=True)
            else:
                info = views.data_html(plan, ui=True)
            if seq == self._data_seq:
                self.data_plan = plan
                self._data_info.value = info
                self.status = "data checked"
            return plan

        return self._background("Checking the data", "checking data", work, wait=wait, exclusive=False)

    # =========================================================================================
    # 5. preview
    # =========================================================================================
    def make_plan(self, *, wait: bool = True) -> Any:
        """Ask :meth:`Index.plan_promotion` for the plan (nothing is written) and show it: the
        schema decision, what is published now and each field the plan changes in it (or the new
        version it makes), the exact records, the data action and the cost.

        When the plan would remove or weaken something published, the library refuses it
        (:class:`~atdata_lab.errors.PromotionDowngradeError`): each downgrade is listed with
        "Remove/downgrade these on purpose" (:meth:`confirm_downgrades`), :attr:`plan` stays None
        and Publish stays disabled."""
        if self.entry is None:
            raise InvalidArgumentError("choose a dataset first")
        options = self.promotion_options()
        self._decision.value = "<div class='atdata-muted'>Planning…</div>"
        self._plan_body.value = ""
        self._changes.value = ""
        self._diff_box.children = []
        self.plan = None

        def work(task: BackgroundTask) -> Any:
            try:
                plan = self.index.plan_promotion(self.entry.name, **options)
            except PromotionDowngradeError as e:
                self.downgrades = list(e.downgrades)
                self._show_downgrades(None)
                self._decision.value = (
                    "<div class='atdata-muted atdata-plan-refused'>No plan yet: this would remove "
                    "or weaken what is published. Confirm it above, or go Back and keep it."
                    "</div>"
                )
                self.status = "needs confirmation"
                return None
            d = plan.schema_decision
            children = []
            if d.action == "conflict":
                children = [SchemaDiffViewer(d.uri, self.entry, index=self.index)]
            self.downgrades = []
            self.plan = plan
            self._show_downgrades(plan)
            self._decision.value = views.plan_head_html(plan)
            self._changes.value = views.changes_html(plan)
            self._diff_box.children = children
            self._plan_body.value = views.plan_body_html(plan, ui=True)
            if plan.already_published:
                self.published_uri = plan.already_published
            self.status = "planned"
            return plan

        return self._background("Planning the promotion", "planning", work, wait=wait)

    def _show_downgrades(self, plan: Any) -> None:
        """The confirmation box: the refused downgrades (unticked), or what the plan does on purpose
        (ticked), or nothing."""
        if plan is None and self.downgrades:
            body, ticked = views.downgrades_html(self.downgrades, at="preview", ui=True), False
        elif plan is not None and plan.intents:
            body, ticked = views.intents_html(plan.intents), True
        else:
            body, ticked = "", False
        self._downgrade_list.value = body
        self._quiet_confirm = True
        try:
            self._confirm.value = ticked
        finally:
            self._quiet_confirm = False
        self._downgrade_box.layout.display = "flex" if body else "none"

    def _on_confirm_change(self, change: dict[str, Any]) -> None:
        if not self._quiet_confirm:
            self.confirm_downgrades(change["new"], wait=False)

    def confirm_downgrades(self, on_purpose: bool = True, *, wait: bool = True) -> Any:
        """ "Remove/downgrade these on purpose": plan again with the arguments the listed downgrades
        need (``clear=[field, ...]`` for removed fields, ``downgrade=True`` for weaker storage or
        dropped checksums: what :meth:`Index.promote_entry` would need for the same result);
        ``on_purpose=False`` takes it back. Holds until an input changes. Returns the plan."""
        if on_purpose:
            if not self.downgrades and not self._intent_options():
                raise InvalidArgumentError(
                    "there is nothing to confirm: the plan removes and weakens nothing"
                )
            if self.downgrades:
                clear = [d.field for d in self.downgrades if d.field in PROMOTED_FIELDS]
                intent: dict[str, Any] = {"clear": clear} if clear else {}
                if any(d.field not in PROMOTED_FIELDS for d in self.downgrades):
                    intent["downgrade"] = True
                self._intent = (self._inputs_key(), intent)
        else:
            self._intent = None
        return self.make_plan(wait=wait)

    @property
    def schema_diff(self) -> Any:
        """The SchemaDiffViewer widget embedded in Preview for a conflict (else None)."""
        return self._diff_box.children[0] if self._diff_box.children else None

    def _can_publish(self) -> bool:
        p = self.plan
        return p is not None and not p.blocking and p.schema_decision.action != "conflict"

    # =========================================================================================
    # 6. publish
    # =========================================================================================
    def _render_publish(self) -> None:
        p = self.plan
        if self._publishing:
            return
        if self.result is not None:
            return
        if p is not None:
            self._publish_info.value = views.publish_ready_html(p)

    def publish(self, *, wait: bool = True) -> Any:
        """Execute the plan shown in Preview (off the UI thread, with progress and Cancel), then
        verify. An already-published plan writes nothing.

        Returns:
            The :class:`~atdata_lab.promotion.PromotionResult` (None when cancelled) with
            ``wait=True``, else the running :class:`BackgroundTask`.
        """
        if self.plan is None and self.downgrades:
            raise InvalidArgumentError(
                "publishing would remove or weaken what is published ("
                + "; ".join(d.describe() for d in self.downgrades)
                + "): confirm it on purpose in Preview first (confirm_downgrades())"
            )
        if self.plan is None:
            raise InvalidArgumentError("there is no plan yet: go to Preview first")
        plan = self.plan
        if plan.blocking or plan.schema_decision.action == "conflict":
            raise InvalidArgumentError("publishing is blocked: " + "; ".join(plan.blocking))
        self._go("publish")
        self._cancel_event.clear()
        self._progress.reset()
        self._publishing = True
        self._publish_info.value = (
            "<div class='atdata-muted'>Publishing… (Cancel stops it before any record is written)</div>"
        )

        def work(task: BackgroundTask) -> Any:
            try:
                try:
                    result = plan.execute(progress=self._report, cancel=self._cancel_event)
                except PromotionCancelled as e:
                    self.status = "cancelled"
                    self._progress.stop("Cancelled", "cancelled here")
                    self._publish_info.value = views.cancelled_html(e)
                    return None
            finally:
                self._publishing = False
            self.result = result
            self.published_uri = result.at_uri
            self.entry = self.index.get_entry_by_name(self.entry.name)
            self._done.add("publish")
            self.status = "already published" if result.already_published else "published"
            self._publish_info.value = views.publish_result_html(result)
            # the new published state, everywhere it is shown: Dataset step, banner, Data choices, browser
            self._read_published_work()
            self._refresh_browser()
            self._go("verify")
            try:
                self._verify_work()
            except Exception:  # shown in the panel as "Verifying failed"; the publication stands
                self.status = "verification failed"
            return result

        return self._background("Publishing", "publishing", work, wait=wait)

    # =========================================================================================
    # 7. verify
    # =========================================================================================
    def uris(self) -> dict[str, str]:
        """The at:// URIs to share: dataset, schema and label records."""
        if self.result is not None:
            return {
                "dataset": self.result.at_uri,
                "schema": self.result.schema_uri,
                "label": self.result.label_uri,
            }
        if self.plan is not None:
            return {
                "dataset": self.plan.already_published or self.plan.entry_uri,
                "schema": self.plan.schema_decision.uri,
                "label": self.plan.label_uri,
            }
        return {"dataset": self.published_uri} if self.published_uri else {}

    def _verify_work(self) -> Any:
        with self.reporting("Verifying"):
            self.status = "verifying"
            self._checks.value = "<div class='atdata-muted'>Verifying…</div>"
            report = self.index.verify(self.published_uri)
            self.report = report
            self._checks.value = views.verify_advice_html(report, self.uris())
            self._done.add("verify")
            self.status = report.verdict
            return report

    def verify(self, *, wait: bool = True) -> Any:
        """Run :meth:`Index.verify` on the published dataset and show each check."""
        if not self.published_uri:
            raise InvalidArgumentError("nothing is published yet: publish first")
        if self.step != "verify":
            self._go("verify")
        return self._background("Verifying", "verifying", lambda _t: self._verify_work(), wait=wait)

    @property
    def load_line(self) -> str:
        """The ``atdata.load_dataset(...)`` line to share (after Verify)."""
        return self.report.load_line if self.report is not None else ""

    def open_browser(self) -> Any:
        """Show the index browser's Published tab with the published dataset selected: the browser
        given to the wizard, else a new ``index.browse()`` below the checks; the page scrolls to it
        (it may be far above). Returns the browser."""
        b = self.browser
        if b is None:
            b = self.index.browse()
            self._browser_box.children = [b]
        b.show_tab("published")
        b.load_published()  # the records just written
        if self.published_uri:
            b.select_record(self.published_uri)
        self._scroller.scroll_to(b)
        return b

    # =========================================================================================
    # navigation
    # =========================================================================================
    def next(self, *, wait: bool = True) -> str:
        """Go to the next step (when its input is valid); returns the new step.

        Entering Data checks the data; entering Preview plans; entering Verify verifies.

        Raises:
            ValueError: the current step is not complete (the message says why).
        """
        if wait:
            self._await_read()
        if not self.can_next:
            raise InvalidArgumentError(f"cannot go on from {STEP_TITLES[self.step]}: {self._why_not()}")
        i = STEPS.index(self.step)
        self._done.add(self.step)
        target = STEPS[i + 1]
        self._go(target)
        if target == "data":
            self.check_data(wait=wait)
        elif target == "preview":
            self.make_plan(wait=wait)
        elif target == "verify" and self.report is None:
            self.verify(wait=wait)
        return self.step

    def back(self) -> str:
        """Go to the previous step; everything typed stays."""
        if self._publishing:
            raise InvalidArgumentError("publishing is running: Cancel it first")
        i = STEPS.index(self.step)
        if i > 0:
            self._go(STEPS[i - 1])
        return self.step

    def cancel(self) -> str:
        """Cancel: while publishing, stop before the records are written (nothing is published);
        otherwise close the wizard (Start over brings it back with the input kept)."""
        if self._publishing:
            self._cancel_event.set()
            self.status = "cancelling"
            return self.status
        published = self.published_uri
        self._cancelled_msg.value = (
            "<div class='atdata-card'>Promotion wizard closed. "
            + (f"<code>{esc(published)}</code> stays published." if published else "Nothing was published.")
            + "</div>"
        )
        self.set_body(self._indicator, self._cancelled)
        self.status = "closed"
        return self.status

    def restart(self) -> str:
        """After Cancel: back to the first step, with everything typed kept."""
        self.status = ""
        self._go("connect")
        return self.step

    # =========================================================================================
    # static fallback
    # =========================================================================================
    def _static_html(self) -> str:
        parts = [
            f"<div class='atdata-promotion-wizard'>{views.steps_html(STEPS, STEP_TITLES, self.step, self._done)}"
        ]
        if self.entry is not None:
            parts.append(self._card_html(self.entry))
        if self.plan is not None:
            parts.append(views.plan_html(self.plan))
        if self.report is not None:
            parts.append(views.verify_advice_html(self.report, self.uris()))
        parts.append("</div>")
        return "".join(parts)

    def __repr__(self) -> str:
        entry = self.entry.name if self.entry is not None else None
        return f"PromotionWizard(step={self.step!r}, entry={entry!r}, status={self.status!r})"
