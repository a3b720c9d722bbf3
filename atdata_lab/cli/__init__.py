"""The ``atdata-lab`` command (also ``python -m atdata_lab.cli``).

``atdata-lab inspect TARGET``
    What a dataset is: name, sample type and schema version, shard and sample counts, size,
    checksums, shards, where it is published (:mod:`.datasets`).
``atdata-lab preview TARGET [-n N]``
    Its first N samples, arrays summarised (:mod:`.datasets`).
``atdata-lab stats TARGET`` / ``atdata-lab compare A B``
    Each field's statistics over the whole dataset; two datasets' side by side (:mod:`.stats`).
``atdata-lab schema show TARGET`` / ``atdata-lab schema diff A B``
    A schema's fields; the verdict of a comparison and the next semantic version (:mod:`.schema`).
``atdata-lab diagnose``
    Which index, store, PDS and account are configured, and whether they answer (:mod:`.diagnose`).
``atdata-lab version``
    Versions of atdata-lab, Python and the key dependencies (:mod:`.version`).
``atdata-lab sandbox start|status|stop``
    The local reference PDS (:mod:`.sandbox`).

TARGET is shard files (a path, folder, glob or brace pattern), ``@local/NAME`` (an entry of the
index: ``--index PATH``, default ``$ATDATA_HOME/index.db``), or a published dataset (``at://...``,
``@handle/NAME``; read from ``$ATDATA_PDS_URL``).

Exit codes: 0 success; 1 a failure (something unreachable, a shard that fails its checksum...);
2 bad input (unknown option, no such dataset, file or schema); 3 ``sandbox status``: not running.
Errors of atdata-lab print as one line on stderr, without a traceback, and never with a secret.
"""

from __future__ import annotations

import argparse
import os
import sys

from atdata_lab.errors import (
    AtdataLabError,
    DataNotFoundError,
    InvalidArgumentError,
    InvalidTypeError,
    LensNotFoundError,
    NoAtmosphereError,
    NotFoundError,
    RecordNotFoundError,
    SampleIndexError,
    ShardError,
)

from . import datasets, diagnose, sandbox, schema, stats, version
from ._common import EXIT_FAILURE, EXIT_USAGE, redact

__all__ = ["main"]

EXIT_INTERRUPTED = 130

#: Our errors that mean "what was asked for cannot be (a bad argument, no such thing)": exit 2.
_BAD_INPUT = (
    InvalidArgumentError,
    InvalidTypeError,
    NotFoundError,
    DataNotFoundError,
    SampleIndexError,
    RecordNotFoundError,
    NoAtmosphereError,
    LensNotFoundError,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atdata-lab",
        description="atdata-lab command line tools: inspect datasets and schemas, check the setup, "
        "run the local sandbox PDS.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    datasets.register(sub)
    stats.register(sub)
    schema.register(sub)
    diagnose.register(sub)
    version.register(sub)
    sandbox.register(sub)
    return parser


def exit_code(exc: AtdataLabError) -> int:
    """2 for bad input (see ``_BAD_INPUT``), else 1 (a shard failing its check is a failure)."""
    if isinstance(exc, _BAD_INPUT) and not isinstance(exc, ShardError):
        return EXIT_USAGE
    return EXIT_FAILURE


def _error(text: str) -> None:
    print("error: " + redact(" ".join(text.split())), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``atdata-lab`` command line.

    Args:
        argv: Arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        The exit code: 0 success, 1 failure, 2 bad input, 3 ``sandbox status``: not running
        (argparse exits with 2 itself on an unknown command or option).
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AtdataLabError as exc:
        _error(str(exc))
        return exit_code(exc)
    except ImportError as exc:  # an optional dependency: the message says what to install
        _error(str(exc))
        return EXIT_FAILURE
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # `atdata-lab preview ... | head`: the reader left
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_FAILURE
        _error(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
