"""``atdata-lab version``: this package, Python, the dependencies that matter, and the atdata
version it stands in for."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from typing import Any

__all__ = ["ATDATA_COMPAT", "register"]

#: The atdata release line atdata-lab is a drop-in for (``import atdata_lab as atdata``).
ATDATA_COMPAT = "0.7"

#: Distributions reported: required first, then the optional extras (s3, redis, widgets).
REQUIRED = ("numpy", "msgpack", "fsspec", "sqlite-utils", "atproto", "httpx", "requests", "libipld", "tqdm")
OPTIONAL = ("s3fs", "redis", "ipywidgets", "anywidget", "matplotlib", "pandas", "pyarrow")


def register(sub: Any) -> None:
    """Add ``version`` to the subcommands ``sub``."""
    p = sub.add_parser("version", help="versions of atdata-lab, Python and the key dependencies")
    p.set_defaults(func=_cmd_version)


def _installed(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cmd_version(args: argparse.Namespace) -> int:
    del args
    from atdata_lab import __version__
    from atdata_lab.views.text import kv_text, text_table

    print(
        kv_text(
            [
                ("atdata-lab", __version__),
                ("drop-in for", f"atdata {ATDATA_COMPAT} (import atdata_lab as atdata)"),
                ("python", f"{platform.python_version()} ({sys.executable})"),
                ("platform", platform.platform()),
            ]
        )
    )
    print()
    rows = [(d, _installed(d), "required") for d in REQUIRED] + [
        (d, _installed(d), "optional") for d in OPTIONAL
    ]
    print(text_table(["package", "version", ""], rows))
    return 0
