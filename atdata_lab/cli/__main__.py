"""``python -m atdata_lab.cli``: the ``atdata-lab`` command."""

import sys

from atdata_lab.cli import main

sys.exit(main())
