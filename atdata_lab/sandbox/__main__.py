"""``python -m atdata_lab.sandbox start|stop|status``: the same as ``atdata-lab sandbox ...``."""

from __future__ import annotations

import sys

from atdata_lab.cli import main

if __name__ == "__main__":
    sys.exit(main(["sandbox", *sys.argv[1:]]))
