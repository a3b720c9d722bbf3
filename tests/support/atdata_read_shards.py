"""Reads WebDataset shards with the real atdata 0.7 and prints the decoded samples as JSON.

Runs INSIDE the reference venv (Python 3.12 + ``atdata==0.7.0b1``), never in the project's own
environment; see ``tests/support/atdata_reference.py``, which builds that venv and runs this file.

Usage::

    python atdata_read_shards.py --spec '<json>' [--limit N] [--batch-size N] SHARD [SHARD ...]

``--spec`` (or ``--spec-file PATH``) describes the sample type, in either of two forms:

* simple: ``{"name": "ExperimentSample", "fields": [{"name": "measurement", "kind": "ndarray"},
  {"name": "timestamp", "kind": "float"}, {"name": "sensor_id", "kind": "str"}]}`` with kinds
  ``str int float bool bytes ndarray list[str] list[float] list[int] optional[ndarray]
  optional[str] optional[int] optional[float] optional[bytes]``;
* an atdata local schema record (``fields[].fieldType`` with ``local#primitive`` / ``local#ndarray``
  / ``local#array`` and ``optional``), as stored in atdata's index (``local_schemas.json``).

The class is built with ``@atdata.packable`` from real (non-string) annotations, because atdata
0.7 recognises array fields only by ``field.type == numpy.typing.NDArray`` (bare ``NDArray``;
``NDArray[np.float32]`` or ``typing.Optional[NDArray]`` would stay undecoded bytes) and optional
arrays only as the PEP 604 union ``NDArray | None``.

Each SHARD is read in order with ``atdata.Dataset[T](shard).ordered(batch_size=None)`` (each
argument is a WebDataset URL, so brace patterns work). With ``--batch-size N`` it reads with
``ordered(batch_size=N)`` instead and unstacks every ``SampleBatch`` field back into samples.

Output (one JSON document on stdout): ``{"atdata_version", "type", "shards", "count",
"batch_sizes" (only with --batch-size), "samples": [...]}``; samples use the ``expected.json``
convention: arrays ``{"dtype": dtype.str, "shape": [...], "data": nested lists}``, bytes
``{"bytes_hex": ...}``, None as null.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import atdata
import numpy as np
from numpy.typing import NDArray

_PRIMITIVES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "bytes": bytes}


def _annotation(kind: str) -> Any:
    """Maps a simple kind string to the real annotation atdata understands."""
    kind = kind.strip().replace(" ", "")
    if kind.lower() in ("ndarray", "ndarray[float32]", "nd"):
        return NDArray
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind.startswith("optional[") and kind.endswith("]"):
        inner = _annotation(kind[len("optional[") : -1])
        return inner | None
    if kind.startswith("list[") and kind.endswith("]"):
        inner = _annotation(kind[len("list[") : -1])
        return list[inner]
    raise SystemExit(f"unsupported field kind: {kind!r}")


def _kind_from_field_type(ft: dict[str, Any]) -> str:
    """Maps an atdata local-schema ``fieldType`` to a simple kind string."""
    t = ft.get("$type", "")
    if t.endswith("#primitive"):
        return ft["primitive"]
    if t.endswith("#ndarray"):
        return "ndarray"
    if t.endswith("#array"):
        return f"list[{_kind_from_field_type(ft['items'])}]"
    raise SystemExit(f"unsupported fieldType: {ft!r}")


def _fields(spec: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for f in spec["fields"]:
        if "kind" in f:
            kind = f["kind"]
        else:
            kind = _kind_from_field_type(f["fieldType"])
            if f.get("optional") and not kind.startswith("optional["):
                kind = f"optional[{kind}]"
        out.append((f["name"], kind))
    return out


def make_type(spec: dict[str, Any]) -> type:
    """Builds the ``@atdata.packable`` class described by ``spec``.

    Optional fields get a ``None`` default when every later field is optional too (dataclass
    ordering rules); all other fields are required, as in a hand-written class.
    """
    fields = _fields(spec)
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": "__main__"}
    trailing_optional = True
    defaults: set[str] = set()
    for name, kind in reversed(fields):
        trailing_optional = trailing_optional and kind.replace(" ", "").startswith("optional[")
        if trailing_optional:
            defaults.add(name)
    for name, kind in fields:
        annotations[name] = _annotation(kind)
        if name in defaults:
            namespace[name] = None
    namespace["__annotations__"] = annotations
    cls = type(spec["name"], (), namespace)
    return atdata.packable(cls)


def to_json(value: Any) -> Any:
    """Converts a decoded field value to the ``expected.json`` convention."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.tolist()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes_hex": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def read(cls: type, shards: list[str], limit: int | None, batch_size: int | None) -> dict[str, Any]:
    """Reads ``shards`` in order with atdata and returns the JSON-ready result."""
    names = [n for n, _ in _fields_of(cls)]
    samples: list[dict[str, Any]] = []
    batch_sizes: list[int] = []
    for shard in shards:
        ds = atdata.Dataset[cls](shard)
        if batch_size is None:
            for sample in ds.ordered(batch_size=None):
                samples.append({n: to_json(getattr(sample, n)) for n in names})
                if limit is not None and len(samples) >= limit:
                    return _result(cls, shards, samples, None)
        else:
            for batch in ds.ordered(batch_size=batch_size):
                columns = {n: getattr(batch, n) for n in names}
                size = len(batch.samples)
                batch_sizes.append(size)
                for i in range(size):
                    samples.append({n: to_json(columns[n][i]) for n in names})
                if limit is not None and len(samples) >= limit:
                    return _result(cls, shards, samples[:limit], batch_sizes)
    return _result(cls, shards, samples, batch_sizes if batch_size is not None else None)


def _fields_of(cls: type) -> list[tuple[str, Any]]:
    import dataclasses

    return [(f.name, f.type) for f in dataclasses.fields(cls)]


def _result(cls: type, shards: list[str], samples: list, batch_sizes: list[int] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "atdata_version": getattr(atdata, "__version__", None) or _dist_version(),
        "type": cls.__name__,
        "shards": shards,
        "count": len(samples),
        "samples": samples,
    }
    if batch_sizes is not None:
        out["batch_sizes"] = batch_sizes
    return out


def _dist_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("atdata")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--spec", help="sample type spec as JSON")
    g.add_argument("--spec-file", help="file holding the sample type spec as JSON")
    p.add_argument("--limit", type=int, default=None, help="stop after this many samples")
    p.add_argument("--batch-size", type=int, default=None, help="read with ordered(batch_size=N)")
    p.add_argument("shards", nargs="+", help="shard paths / WebDataset URLs, read in order")
    args = p.parse_args(argv)
    spec = json.loads(args.spec) if args.spec else json.loads(Path(args.spec_file).read_text())
    cls = make_type(spec)
    # atdata/webdataset print progress on stdout; keep stdout for the one JSON document.
    with contextlib.redirect_stdout(sys.stderr):
        result = read(cls, args.shards, args.limit, args.batch_size)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
