"""Lenses: bidirectional transformations between sample types, and the network that routes them.

A :class:`Lens` has a getter (``Source -> View``) and, optionally, a putter (``(View, Source) ->
Source``). ``@lens`` makes one from a getter and registers it in the :class:`LensNetwork` (one per
process); ``@that_lens.putter`` adds the reverse. ``Dataset.as_type(View)`` asks the network for a
path from the dataset's type to ``View``, through several lenses when needed (the shortest path).

Well-behaved lenses obey the laws :func:`lens_law_violations` checks: GetPut
(``put(get(s), s) == s``) and PutGet (``get(put(v, s)) == v``).

atdata 0.7's names and behaviour; unlike atdata, a missing lens is a :class:`LensNotFoundError`
(a ``ValueError``) that names the hop that is missing, and paths of several lenses are found.
"""

from __future__ import annotations

import functools
import sys
import typing
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np

from .errors import InvalidArgumentError, LensNotFoundError
from .sample import Packable as Packable  # atdata.lens has it too
from .schema import Schema

__all__ = ["Lens", "LensNetwork", "LensNotFoundError", "lens", "lens_law_violations"]

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")

LensGetter = Callable[[Any], Any]
LensPutter = Callable[[Any, Any], Any]
DatasetType = type  # atdata's alias: a sample type
LensSignature = tuple[type, type]  # atdata's alias: (source type, view type)


def _signature_types(get: Callable[..., Any]) -> tuple[type | None, type | None]:
    """The source and view types a getter's annotations name (None where it names none)."""
    try:
        hints = typing.get_type_hints(get)
    except Exception:  # annotations that do not resolve (a local class named as a string)
        hints = dict(getattr(get, "__annotations__", {}))
    params = [p for p in hints if p != "return"]
    source = hints.get(params[0]) if params else None
    view = hints.get("return")
    return (source if isinstance(source, type) else None, view if isinstance(view, type) else None)


class Lens(Generic[S, V]):
    __name__: str
    """A getter ``Source -> View`` and an optional putter ``(View, Source) -> Source``.

    Without a putter, :meth:`put` returns the source unchanged (the trivial putter).

    Args:
        get: The getter; its first parameter's and its return annotations are the source and
            view types (``source=``/``view=`` give them when the getter has no annotations).
        put: The putter.
    """

    def __init__(
        self,
        get: LensGetter,
        put: LensPutter | None = None,
        *,
        source: type | None = None,
        view: type | None = None,
    ) -> None:
        if not callable(get):
            raise InvalidArgumentError(f"a lens needs a getter function, not {get!r}")
        found_source, found_view = _signature_types(get)
        self.source_type: type | None = source or found_source
        self.view_type: type | None = view or found_view
        self._getter = get
        self._putter = put
        self._from_network = False  # made by LensNetwork.find (a path): pickled as a network lookup
        functools.update_wrapper(self, get)

    def get(self, s: S) -> V:
        """The view of source ``s``."""
        return self._getter(s)

    def put(self, v: V, s: S) -> S:
        """Source ``s`` updated from view ``v`` (``s`` itself without a putter)."""
        return s if self._putter is None else self._putter(v, s)

    def __call__(self, s: S) -> V:
        return self._getter(s)

    def putter(self, put: LensPutter) -> LensPutter:
        """Decorator: ``@that_lens.putter`` adds the reverse direction."""
        if not callable(put):
            raise InvalidArgumentError(f"a putter must be a function (view, source) -> source, not {put!r}")
        self._putter = put
        return put

    @property
    def has_putter(self) -> bool:
        return self._putter is not None

    def then(self, other: Lens[V, W]) -> Lens[S, W]:
        """This lens followed by ``other`` (``Source -> View -> Other``), putter included."""
        first, second = self, other

        def get(s: Any) -> Any:
            return second.get(first.get(s))

        def put(w: Any, s: Any) -> Any:
            return first.put(second.put(w, first.get(s)), s)

        combined: Lens[S, W] = Lens(
            get,
            put if (first.has_putter or second.has_putter) else None,
            source=first.source_type,
            view=second.view_type,
        )
        combined.__name__ = f"{getattr(first, '__name__', 'lens')}+{getattr(second, '__name__', 'lens')}"
        return combined

    @staticmethod
    def identity(sample_type: type[S]) -> Lens[S, S]:
        """The lens that views a type as itself."""
        ident: Lens[S, S] = Lens(lambda s: s, lambda v, s: v, source=sample_type, view=sample_type)
        ident.__name__ = f"identity[{sample_type.__name__}]"
        return ident

    def __reduce__(self) -> Any:
        # Pickled by reference (for DataLoader workers): a module-level lens by its name, a lens the
        # network made (a path) as "the network's lens between these two types", found again on load.
        module = sys.modules.get(getattr(self, "__module__", None) or "")
        qualname = getattr(self, "__qualname__", None)
        if module is not None and qualname and getattr(module, qualname, None) is self:
            return qualname
        if self._from_network and self.source_type is not None and self.view_type is not None:
            return (_network_lens, (self.source_type, self.view_type))
        return super().__reduce__()

    def __repr__(self) -> str:
        def name(t: type | None) -> str:
            return t.__name__ if t is not None else "?"

        return (
            f"Lens({getattr(self, '__name__', 'lens')}: {name(self.source_type)} -> {name(self.view_type)})"
        )


class LensNetwork:
    """The registry of lenses: one per process (``LensNetwork()`` always returns it).

    ``_registry`` maps ``(Source, View)`` to the registered :class:`Lens` (as atdata's does).
    """

    _instance: LensNetwork | None = None
    _registry: dict[tuple[type, type], Lens]

    def __new__(cls) -> LensNetwork:
        if cls._instance is None:
            inst = super().__new__(cls)
            inst._registry = {}
            cls._instance = inst
        return cls._instance

    def register(self, _lens: Lens) -> Lens:
        """Add a lens (a later lens for the same two types replaces the earlier one)."""
        if not isinstance(_lens, Lens):
            raise InvalidArgumentError(f"register() takes a Lens (made with @lens), not {_lens!r}")
        if _lens.source_type is None or _lens.view_type is None:
            raise InvalidArgumentError(
                f"{_lens!r} does not say its types: annotate the getter, e.g. "
                "def f(src: Source) -> View, or give Lens(get, source=Source, view=View)"
            )
        self._registry[(_lens.source_type, _lens.view_type)] = _lens
        return _lens

    def find(self, source: type, view: type) -> Lens | None:
        """The lens from ``source`` to ``view``: direct, else the composition along the shortest
        path of registered lenses; None when there is none."""
        if source is view:
            return Lens.identity(source)
        direct = self._registry.get((source, view))
        if direct is not None:
            return direct
        edges: dict[type, list[tuple[type, Lens]]] = {}
        for (a, b), ln in self._registry.items():
            edges.setdefault(a, []).append((b, ln))
        previous: dict[type, tuple[type, Lens]] = {}
        queue: deque[type] = deque([source])
        seen = {source}
        while queue:
            at = queue.popleft()
            for nxt, ln in edges.get(at, []):
                if nxt in seen:
                    continue
                seen.add(nxt)
                previous[nxt] = (at, ln)
                if nxt is view:
                    chain = []
                    node = view
                    while node is not source:
                        node, step = previous[node]
                        chain.append(step)
                    chain.reverse()
                    path = functools.reduce(lambda acc, ln: acc.then(ln), chain[1:], chain[0])
                    path._from_network = True
                    return path
                queue.append(nxt)
        return None

    def transform(self, source: type, view: type) -> Lens:
        """The lens from ``source`` to ``view`` (see :meth:`find`).

        Raises:
            LensNotFoundError: No path; the message names the types each side reaches and the
                lens that would connect them (a ``ValueError``, as atdata raises).
        """
        found = self.find(source, view)
        if found is not None:
            return found
        reach = self._reachable(source, forward=True) - {source}
        back = self._reachable(view, forward=False) - {view}
        src_names = ", ".join(sorted(t.__name__ for t in reach)) or "nothing"
        view_names = ", ".join(sorted(t.__name__ for t in back)) or "nothing"
        hop_from = sorted({source, *reach}, key=lambda t: t.__name__)[0].__name__
        hop_to = sorted({view, *back}, key=lambda t: t.__name__)[0].__name__
        raise LensNotFoundError(
            source,
            view,
            [(b, getattr(ln, "__name__", "lens")) for (a, b), ln in self._registry.items() if a is source],
            message=f"no lens from {source.__name__} to {view.__name__}: {source.__name__} leads to {src_names}; "
            f"{view.__name__} is reached from {view_names}. The missing hop: register one, e.g. "
            f"@atdata.lens def f(src: {hop_from}) -> {hop_to}: ...",
        )

    def _reachable(self, start: type, *, forward: bool) -> set[type]:
        out = {start}
        frontier = [start]
        while frontier:
            at = frontier.pop()
            for a, b in self._registry:
                nxt = b if forward and a is at else a if not forward and b is at else None
                if nxt is not None and nxt not in out:
                    out.add(nxt)
                    frontier.append(nxt)
        return out

    def registered_twin(self, generated: type) -> type | None:
        """The registered source type that a schema-generated type stands for: same name and
        fields (ndarray dtypes aside), so data read from an index through its stored schema
        finds the lenses registered for the class that wrote it. None for a type of the user's
        own, or when no registered type matches."""
        if getattr(generated, "__module__", None) != "atdata_lab.generated":
            return None
        wanted = Schema.from_type(generated).content_cid(erase_dtypes=True)
        for a, _ in reversed(self._registry):  # the newest registration first
            if (
                a.__name__ == generated.__name__
                and a is not generated
                and Schema.from_type(a).content_cid(erase_dtypes=True) == wanted
            ):
                return a
        return None

    def lenses(self) -> list[Lens]:
        """Every registered lens."""
        return list(self._registry.values())

    def clear(self) -> None:
        """Forget every registered lens (tests)."""
        self._registry.clear()


def lens(f: LensGetter) -> Lens:
    """Decorator: a :class:`Lens` from a getter ``def f(src: Source) -> View``, registered in the
    :class:`LensNetwork` so ``Dataset.as_type(View)`` finds it."""
    made: Lens[Any, Any] = Lens(f)
    LensNetwork().register(made)
    return made


def _network_lens(source: type, view: type) -> Lens:
    """The network's lens from ``source`` to ``view`` (unpickling a lens the network made)."""
    return LensNetwork().transform(source, view)


def _same(a: Any, b: Any) -> bool:
    """Equality that understands arrays and samples with array fields."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    fields = getattr(type(a), "__dataclass_fields__", None)
    if fields is not None:
        return type(a) is type(b) and all(_same(getattr(a, k), getattr(b, k)) for k in fields)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN is itself
    return bool(a == b)


def lens_law_violations(the_lens: Lens, source: Any, view: Any) -> list[str]:
    """The lens laws ``the_lens`` breaks for ``source`` and ``view``: ``"GetPut"`` when
    ``put(get(s), s) != s``, ``"PutGet"`` when ``get(put(v, s)) != v``. Empty: well-behaved here."""
    broken = []
    if not _same(the_lens.put(the_lens.get(source), source), source):
        broken.append("GetPut")
    if not _same(the_lens.get(the_lens.put(view, source)), view):
        broken.append("PutGet")
    return broken
