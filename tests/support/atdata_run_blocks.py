"""Runs a document's Python blocks in order, in one namespace, with the real atdata 0.7.

Runs INSIDE the reference venv (see ``tests/support/atdata_reference.py``); the working directory and
``HOME`` are the throwaway ones ``run_atdata`` gives it. Input on stdin: ``{"name": "<document>",
"blocks": ["<source>", ...]}`` (the blocks as the test runs them, placeholders already replaced).
Output, the last line of stdout: ``{"atdata_version", "results": [{"block": i, "error": null |
"<Type>: <message>"}, ...]}``: every block runs, whatever the ones before it did.

Two harness settings, no block edit: ``Atmosphere.login`` and ``Atmosphere(...)`` default their
``base_url`` to ``$ATDATA_PDS_URL`` (atdata reads that variable only in ``Atmosphere.from_env``), so a
block that logs in reaches the sandbox PDS, as it does under atdata-lab; and atdata's login skips
the ``app.bsky.actor.getProfile`` lookup its atproto client makes after creating the session, which
a bare PDS (no Bluesky AppView) does not serve (the DID and handle come from the session instead).
"""

import contextlib
import io
import json
import os
import sys
import types


def _pds_from_env() -> None:
    pds = os.environ.get("ATDATA_PDS_URL")
    if not pds:
        return
    from atdata.atmosphere import client

    init = client.Atmosphere.__init__

    def __init__(self, *args, **kwargs):
        if not args and kwargs.get("base_url") is None:
            kwargs["base_url"] = pds
        init(self, *args, **kwargs)

    client.Atmosphere.__init__ = __init__

    def _login(self, handle, password):
        self._client.login(handle, password, fetch_bsky_profile=False)
        session = self._client._session
        self._session = {"did": session.did, "handle": session.handle}

    def _login_with_session(self, session_string):
        self._client.login(session_string=session_string, fetch_bsky_profile=False)
        session = self._client._session
        self._session = {"did": session.did, "handle": session.handle}

    client.Atmosphere._login = _login
    client.Atmosphere._login_with_session = _login_with_session


def main() -> None:
    job = json.load(sys.stdin)
    import importlib.metadata

    _pds_from_env()
    module = types.ModuleType(job.get("module", "document"))
    sys.modules[module.__name__] = module
    results = []
    for i, block in enumerate(job["blocks"]):
        error = None
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(block, f"{job['name']}[block {i}]", "exec"), module.__dict__)
        except Exception as e:  # noqa: BLE001 - every block's outcome is reported
            error = f"{type(e).__name__}: {e}"
        results.append({"block": i, "error": error, "stdout": out.getvalue()[-2000:]})
    print(json.dumps({"atdata_version": importlib.metadata.version("atdata"), "results": results}))


if __name__ == "__main__":
    main()
