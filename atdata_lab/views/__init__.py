"""What a person reads: library objects in, text and HTML out.

Every function here is pure (its arguments in, a string, rows or an image out): no widget, no
I/O, no :class:`~atdata_lab.index.Index`, nothing of :mod:`atdata_lab.promotion`'s internals.
Library objects (entries, plans, reports, comparisons) render themselves through these functions
(their ``_repr_html_``), the widgets show exactly what they return, and the command line prints
their plain-text forms.

* :mod:`.text` — sizes, counts, dates, labels, escaping, small HTML pieces, plain-text tables;
* :mod:`.entries` — entry rows, columns, cards, and whose publication an entry is;
* :mod:`.schema` — schema field rows, the side-by-side diff, verdicts;
* :mod:`.promotion` — plans, changes to what is published, verification, error advice;
* :mod:`.samples` — field kinds, value text, array statistics, histograms, images;
* :mod:`.datasets` — a dataset's summary with its manifest statistics;
* :mod:`.column_stats` — per-field statistics (header summaries, clickable histogram bins and top
  values) and two datasets' statistics side by side;
* :mod:`.network` — datasets found on the network (rows, detail card, the ``load_dataset`` line),
  and whether the AppView already knows a name.

Every public name of those modules is importable from here.
"""

from __future__ import annotations

from .column_stats import *  # noqa: F403
from .column_stats import __all__ as _column_stats
from .datasets import *  # noqa: F403
from .datasets import __all__ as _datasets
from .entries import *  # noqa: F403
from .entries import __all__ as _entries
from .network import *  # noqa: F403
from .network import __all__ as _network
from .promotion import *  # noqa: F403
from .promotion import __all__ as _promotion
from .samples import *  # noqa: F403
from .samples import __all__ as _samples
from .schema import *  # noqa: F403
from .schema import __all__ as _schema
from .text import *  # noqa: F403
from .text import __all__ as _text

__all__ = sorted({*_text, *_entries, *_schema, *_promotion, *_samples, *_datasets, *_network, *_column_stats})
