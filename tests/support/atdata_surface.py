"""Dumps the public surface of an installed package as JSON: run inside the atdata reference venv.

Usage: ``python atdata_surface.py <package> <module>[,<module>...] <Class>[,<Class>...]``, e.g.
``python atdata_surface.py atdata atdata,atdata.lens atdata:Index,atdata:Dataset``. A class is
``<module>:<name>``. The same code describes atdata-lab's side (``tests/test_public_surface.py``
imports :func:`describe_module` and :func:`describe_class`), so both sides are read one way.

The public names of a module are its ``__all__`` when it has one, else its names without a leading
underscore that the package itself defines: objects whose ``__module__`` is inside the package,
the package's own submodules, and type aliases/constants assigned in the module (recognised as not
being imported from elsewhere). Imports of stdlib or typing names (``Path``, ``Any``) are not API.

Every callable is described by its parameters: ``[name, kind, has_default]``, ``kind`` being
``inspect.Parameter.kind.name`` (``POSITIONAL_OR_KEYWORD``, ``KEYWORD_ONLY``, ``VAR_POSITIONAL``...).
A method's ``self`` / a classmethod's ``cls`` is left out. Only the standard library is used here.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import sys
import types
import typing
from typing import Any


def params_of(obj: Any, *, drop_first: bool = False) -> list[list[Any]] | None:
    """``[[name, kind, has_default], ...]`` for a callable, or None when it has no signature.

    An exception class that keeps ``BaseException.__init__`` reports ``(*args, **kwargs)`` but
    refuses keyword arguments when called: it is described as what it takes, ``(*args)``.
    """
    if isinstance(obj, type) and issubclass(obj, BaseException):
        init_from = next(k for k in obj.__mro__ if "__init__" in vars(k))
        if init_from.__module__ == "builtins":
            return [["args", "VAR_POSITIONAL", False]]
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if (
        drop_first
        and params
        and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD)
    ):
        params = params[1:]
    return [[p.name, p.kind.name, p.default is not p.empty] for p in params]


def _in_package(obj: Any, package: str) -> bool:
    mod = getattr(obj, "__module__", None)
    return isinstance(mod, str) and (mod == package or mod.startswith(package + "."))


def _kind(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    if isinstance(obj, type):
        return "class"
    if isinstance(obj, typing.TypeVar):
        return "typevar"
    if isinstance(obj, typing.TypeAliasType if hasattr(typing, "TypeAliasType") else ()):
        return "alias"
    if typing.get_origin(obj) is not None:  # Callable[...], Tuple[...], Type[...]
        return "alias"
    if inspect.isroutine(obj) or callable(obj):
        return "function"
    return "other"


def public_names(module: types.ModuleType, package: str) -> list[str]:
    """The module's ``__all__``, else its non-underscore names the package defines (see module doc)."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return sorted(n for n in declared if not n.startswith("_"))
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(obj, types.ModuleType):
            if obj.__name__.startswith(package + "."):
                out.append(name)
            continue
        kind = _kind(obj)
        defined_here = (
            (kind in ("class", "function") and _in_package(obj, package))
            or (kind in ("typevar", "alias") and getattr(obj, "__module__", None) == module.__name__)
            or (kind == "alias" and name in getattr(module, "__annotations__", {}))  # X: TypeAlias = ...
        )
        if defined_here:
            out.append(name)
    return sorted(out)


def describe_module(module_name: str, package: str) -> dict[str, Any]:
    """``{name: {"kind": ..., "params": [...] | None}}`` for every public name of a module."""
    module = importlib.import_module(module_name)
    out: dict[str, Any] = {}
    for name in public_names(module, package):
        out[name] = describe_object(getattr(module, name))
    return out


def describe_object(obj: Any) -> dict[str, Any]:
    """``{"kind": ..., "params": [...]}`` of one module-level object (a class: its constructor)."""
    kind = _kind(obj)
    entry: dict[str, Any] = {"kind": kind}
    if kind in ("function", "class"):
        entry["params"] = params_of(obj)
    return entry


def _static_kind(cls: type, name: str) -> tuple[str, Any]:
    """How ``cls.name`` is reached: method, classmethod, staticmethod, property, or attribute."""
    for klass in cls.__mro__:
        if name in vars(klass):
            raw = vars(klass)[name]
            break
    else:
        return "attribute", None
    if isinstance(raw, classmethod):
        return "classmethod", getattr(cls, name)
    if isinstance(raw, staticmethod):
        return "staticmethod", getattr(cls, name)
    if isinstance(raw, (property, functools.cached_property)):
        return "property", None
    if inspect.isfunction(raw) or isinstance(raw, functools.partialmethod):
        return "method", raw
    if hasattr(raw, "__get__") and not hasattr(raw, "__set__") and callable(raw):
        return "method", raw  # a method-like descriptor (functools.singledispatchmethod, ...)
    return "attribute", None


def class_members(cls: type) -> list[str]:
    """The class's public names: attributes, methods, properties, and fields declared by annotation."""
    names = {n for n in dir(cls) if not n.startswith("_")}
    for klass in cls.__mro__:
        if klass is object:
            continue
        names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_")}
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
    return sorted(names)


def describe_class(cls: type) -> dict[str, Any]:
    """``{member: {"kind": ..., "params": [...] | None}}`` for every public member of a class."""
    out: dict[str, Any] = {}
    for name in class_members(cls):
        kind, obj = _static_kind(cls, name)
        entry: dict[str, Any] = {"kind": kind}
        if kind == "method":
            entry["params"] = params_of(obj, drop_first=True)
        elif kind in ("classmethod", "staticmethod"):
            entry["params"] = params_of(obj)
        out[name] = entry
    return out


def resolve_class(spec: str) -> type:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def main(argv: list[str]) -> None:
    package, modules, classes = argv[1], argv[2].split(","), argv[3].split(",")
    import warnings

    warnings.simplefilter("ignore")
    version = None
    try:
        import importlib.metadata as md

        version = md.version(package)
    except Exception:
        pass
    dump = {
        "package": package,
        "version": version,
        "modules": {m: describe_module(m, package) for m in modules},
        "classes": {c.partition(":")[2]: describe_class(resolve_class(c)) for c in classes},
    }
    print(json.dumps(dump, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
