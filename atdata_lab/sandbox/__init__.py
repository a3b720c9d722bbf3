"""A real reference PDS on loopback, started by the project itself: ``atdata_lab.sandbox``.

:class:`Sandbox` runs the reference ``@atproto/pds`` (0.5.x) and a local in-memory PLC
directory (``@did-plc/server``) in one Node.js process, both listening on 127.0.0.1 only.
Handles end in ``.test``. The first start installs Node 22 and the servers from the npm
registry into ``${ATDATA_LAB_CACHE:-~/.cache/atdata-lab}/sandbox`` (about 2 minutes, once per
lockfile); later starts take a few seconds.

Example::

    from atdata_lab.sandbox import Sandbox

    with Sandbox() as sb:
        alice = sb.create_account("alice.test")
        os.environ.update(sb.env(alice))  # ATDATA_PDS_URL, ATDATA_HANDLE, ATDATA_PASSWORD

From a shell: ``atdata-lab sandbox start --account alice.test`` (see :mod:`atdata_lab.cli`).

``Sandbox(appview=True)`` (``atdata-lab sandbox start --appview``) also runs a small network beside
the PDS: a private PostgreSQL, a relay bridge (``listReposByCollection`` and Jetstream events from
the PDS's firehose) and the real AppView, ``atdata-app`` 0.4.0b1, in its own Python 3.12 venv
(installed once by :func:`ensure_appview_installed`); ``sb.appview_url`` and ``ATDATA_APPVIEW_URL``
say where it answers.
"""

from __future__ import annotations

from atdata_lab.sandbox._appview_install import ensure_appview_installed
from atdata_lab.sandbox._core import Sandbox, SandboxAccount, default_run_dir, generate_password
from atdata_lab.sandbox._install import Installation, cache_root, ensure_installed

__all__ = [
    "Installation",
    "Sandbox",
    "SandboxAccount",
    "cache_root",
    "default_run_dir",
    "ensure_appview_installed",
    "ensure_installed",
    "generate_password",
]
