"""Run the real AppView (``atdata_app.main:app`` from atdata-app 0.4.0b1) against the sandbox.

atdata-app resolves DIDs with ``AsyncIdResolver()`` built with no arguments (the public
plc.directory) and has no setting for another PLC. Before the app is imported, this launcher puts
an ``AsyncIdResolver(plc_url=<the sandbox's PLC>)`` into the module-level singleton
``atdata_app._id_resolver`` that ``atdata_app.get_resolver()`` returns; the app's own code is
unmodified. Then uvicorn serves the app on 127.0.0.1.

Runs in the AppView's Python 3.12 venv; imports nothing from atdata_lab. The app reads its settings
from ``ATDATA_*`` environment variables (database, relay, Jetstream; see atdata_app/config.py).
Usage: ``python appview.py --plc http://127.0.0.1:PORT --port PORT``.
"""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plc", required=True, help="the sandbox PLC directory's URL")
    parser.add_argument("--port", type=int, required=True, help="the port to listen on (127.0.0.1)")
    parser.add_argument("--log-level", default="info", help="uvicorn's log level")
    args = parser.parse_args()
    if urlsplit(args.plc).hostname not in ("127.0.0.1", "localhost"):
        parser.error("--plc must be a loopback URL (this launcher runs the AppView of a local sandbox)")
    os.environ["ATDATA_PORT"] = str(args.port)

    import atdata_app
    from atproto_identity.resolver import AsyncIdResolver

    atdata_app._id_resolver = AsyncIdResolver(plc_url=args.plc, timeout=10.0)

    import uvicorn
    from atdata_app.main import app

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=args.log_level, access_log=False)
