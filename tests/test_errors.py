"""Errors share one root (AtdataLabError) and also subclass the builtin they specialise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import atdata_lab
from atdata_lab import errors

BUILTINS = {
    "ValueError",
    "TypeError",
    "KeyError",
    "FileNotFoundError",
    "OSError",
    "RuntimeError",
    "IndexError",
    "ConnectionError",
    "PermissionError",
    "LookupError",
    "Exception",
}


def test_the_library_raises_no_bare_builtin_errors():
    offenders = []
    for path in Path(atdata_lab.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id in BUILTINS:
                    offenders.append(f"{path.name}:{node.lineno} raises {func.id}")
    assert offenders == [], "raise a subclass of AtdataLabError instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (errors.InvalidArgumentError, ValueError),
        (errors.InvalidTypeError, TypeError),
        (errors.NotFoundError, KeyError),
        (errors.DataNotFoundError, FileNotFoundError),
        (errors.EntryNotFoundError, KeyError),
        (errors.SchemaNotFoundError, KeyError),
        (errors.SchemaConflictError, ValueError),
        (errors.EntryConflictError, ValueError),
        (errors.ShardError, ValueError),
        (errors.SampleDecodeError, ValueError),
        (errors.RecordValidationError, ValueError),
        (errors.RecordNotFoundError, KeyError),
        (errors.PDSUnavailableError, ConnectionError),
        (errors.AppViewUnavailableError, ConnectionError),
        (errors.AppViewRequiredError, ValueError),
        (errors.AuthenticationError, PermissionError),
        (errors.StoreError, OSError),
        (errors.ShardExistsError, FileExistsError),
        (errors.PromotionConflictError, ValueError),
        (errors.SampleIndexError, IndexError),
        (errors.BusyError, RuntimeError),
        (errors.SchemaError, ValueError),
        (errors.UntrustedSourceError, PermissionError),
        (errors.RemoteAccessDeniedError, PermissionError),
        (errors.RemoteUnavailableError, ConnectionError),
        (errors.ResponseTooLargeError, ValueError),
        (errors.BlobMismatchError, ValueError),
        (errors.ShardNotFoundError, FileNotFoundError),
        (errors.ShardNotFoundError, errors.ShardError),
    ],
)
def test_each_error_is_both(cls, builtin):
    assert issubclass(cls, errors.AtdataLabError) and issubclass(cls, builtin)


def test_not_found_messages_read_plainly():
    assert str(errors.EntryNotFoundError("no dataset named 'x'")) == "no dataset named 'x'"
