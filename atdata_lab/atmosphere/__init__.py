"""ATProto side of atdata-lab: the PDS client, the record builders and the lexicon validator.

``from atdata_lab.atmosphere import Atmosphere`` gives the client. The client (and so the
``atproto`` SDK) is imported lazily on first use, so importing the pure modules
(:mod:`~atdata_lab.atmosphere.records`, :mod:`~atdata_lab.atmosphere.lexicon`) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdata_lab.atmosphere.client import Atmosphere

__all__ = ["Atmosphere"]


def __getattr__(name: str) -> Any:
    if name == "Atmosphere":
        from atdata_lab.atmosphere.client import Atmosphere

        return Atmosphere
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
