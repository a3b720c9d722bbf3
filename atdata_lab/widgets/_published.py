"""Whose publication an entry's ``published_uri`` is, as the widgets show it.

An entry remembers one ``published_uri`` (``at://<did>/...``), whichever account published it
last. The widgets call it "published" only when that DID is the attached account's: logged in as
someone else, or after a kernel restart on a new sandbox DID, the same entry reads "not published
by this account"; with no account attached, "log in to check". No request is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._base import esc

__all__ = ["PUBLICATION_BADGES", "Publication", "publication_of"]

#: Cell text of the index browser's Published column -> badge style.
PUBLICATION_BADGES = {"published": "ok", "other account": "warn", "log in to check": "info"}


def _did_of(uri: str) -> str:
    return uri[len("at://"):].split("/", 1)[0] if uri.startswith("at://") else ""


@dataclass(frozen=True)
class Publication:
    """An entry's publication seen from the attached account.

    Attributes:
        state: ``"published"`` (by the attached account), ``"other account"``, ``"log in to check"``
            (no account attached) or ``""`` (never published).
        uri: The entry's ``published_uri`` ("" when never published).
        did: The DID that URI names.
        account: The attached account's DID ("" when none).
    """

    state: str
    uri: str = ""
    did: str = ""
    account: str = ""

    @property
    def mine(self) -> bool:
        return self.state == "published"

    @property
    def text(self) -> str:
        """A phrase for lists and detail rows."""
        if self.state == "published":
            return "published"
        if self.state == "other account":
            return f"not published by this account (published by {self.did})"
        if self.state == "log in to check":
            return f"published by {self.did} (log in to check that it is yours)"
        return "not published"

    def badge_html(self) -> str:
        style = PUBLICATION_BADGES.get(self.state)
        if style is None:
            return "<span class='atdata-badge'>local</span>"
        return f"<span class='atdata-badge atdata-badge-{style}'>{esc(self.state)}</span>"


def publication_of(entry: Any, index: Any) -> Publication:
    """The :class:`Publication` of ``entry`` for the index's attached account (may be none):
    :meth:`Index.published_uri` says whether that account published it (each account's
    promotions are recorded apart), else ``entry.published_uri`` names whoever did last."""
    atmosphere = getattr(index, "atmosphere", None)
    account = (getattr(atmosphere, "did", None) or "") if atmosphere is not None else ""
    mine = index.published_uri(entry, did=account) if account and hasattr(index, "published_uri") else None
    if mine:
        return Publication("published", mine, account, account)
    uri = getattr(entry, "published_uri", None) or ""
    if not uri:
        return Publication("")
    did = _did_of(uri)
    if not account:
        return Publication("log in to check", uri, did)
    return Publication("published" if did == account else "other account", uri, did, account)
