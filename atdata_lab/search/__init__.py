"""Search datasets here and across publishers, with atdata 0.7's names.

* :class:`SearchResult`, :class:`SearchResults`: what a search returns;
* :class:`SearchBackend`: what a backend is (a Protocol);
* :class:`LocalSearchBackend`: this index (no network);
* :class:`AppViewSearchBackend`: every publisher, through an AppView (validated answers; PDS
  fallback for one publisher or one record);
* :class:`SearchAggregator`: several backends merged, repeats dropped.

``Index.search(..., scope="local" | "network" | "all")`` puts them together (see
:meth:`~atdata_lab.index.Index.search`). Example::

    from atdata_lab.search import LocalSearchBackend, SearchAggregator
    for r in SearchAggregator([LocalSearchBackend(index)]).search(text="mnist").items:
        print(r.name, r.source)
"""

from ._aggregator import SearchAggregator
from ._appview import AppViewSearchBackend
from ._local import LocalSearchBackend
from ._results import SearchBackend, SearchResult, SearchResults

__all__ = [
    "AppViewSearchBackend",
    "LocalSearchBackend",
    "SearchAggregator",
    "SearchBackend",
    "SearchResult",
    "SearchResults",
]
