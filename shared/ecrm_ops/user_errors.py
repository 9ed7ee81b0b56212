"""How the `ecrm` command answers a mistake: one line on stderr and a non-zero exit, never a traceback.

Commands raise `click.UsageError` (exit 2) for a wrong option and `OperatorError` (exit 1) for
anything else the user can fix (a missing file, a bad row, no local cloud). The `ecrm` group runs
every command inside `guarded`, which turns the errors a user's input or environment causes
(files, encodings, JSON, AWS credentials and endpoints, a busy port) into one line too. Anything
else is a bug: one line saying so and exit 70, and the traceback with `ecrm --debug ...` or
`ECRM_DEBUG=1`.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

DEBUG_ENV = "ECRM_DEBUG"
BUG_EXIT_CODE = 70  # EX_SOFTWARE (sysexits.h): an internal error, not the user's


class OperatorError(click.ClickException):
    """A mistake the user can fix, said in one line (exit 1)."""


class InternalError(click.ClickException):
    """An unexpected exception: a bug, reported in one line unless debugging."""

    exit_code = BUG_EXIT_CODE


def debug_requested(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def guarded(debug: bool = False) -> Iterator[None]:
    """Run a command; errors a user can fix become one line, bugs one line unless debugging."""
    try:
        yield
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
        raise
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None
    except Exception as error:
        if debug_requested(debug):
            raise
        message = explain(error)
        if message is not None:
            raise OperatorError(message) from None
        raise InternalError(
            f"internal error, a bug ({type(error).__name__}: {_first_line(error)}); "
            f"run again with `ecrm --debug ...` or {DEBUG_ENV}=1 to see its traceback"
        ) from None


def explain(error: BaseException) -> str | None:
    """One line for an error the user's input or environment caused, or None when it is a bug."""
    for kind, describe in _explainers():
        if isinstance(error, kind):
            return describe(error)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def _os_error(error: OSError) -> str:
    where = f"{error.filename}: " if error.filename else ""
    if error.errno == errno.EADDRINUSE:
        return f"{where}address already in use ({error.strerror}): choose another port with --port"
    if isinstance(error, FileNotFoundError):
        return f"{where}no such file or directory"
    if isinstance(error, PermissionError):
        return f"{where}permission denied"
    if isinstance(error, IsADirectoryError):
        return f"{where}is a directory, not a file"
    if isinstance(error, ConnectionError | TimeoutError):
        return f"{where}{error.strerror or _first_line(error)}: is the service (the local cloud?) running?"
    return f"{where}{error.strerror or _first_line(error)}"


def _unicode_error(error: UnicodeDecodeError) -> str:
    return (
        f"the input is not {error.encoding} (byte {error.object[error.start : error.start + 1]!r} at offset "
        f"{error.start}): give the file's encoding where the command takes one (--encoding cp1252, latin-1, ...)"
    )


def _json_error(error: json.JSONDecodeError) -> str:
    return f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"


def _url_error(error: Any) -> str:
    return f"cannot reach the API ({error.reason}): is the local cloud running (`ecrm local up`)? is --api-url right?"


def _botocore_explainers() -> list[tuple[type[BaseException], Callable[[Any], str | None]]]:
    try:
        from botocore import exceptions as aws
    except ImportError:  # pragma: no cover - botocore is a dependency
        return []

    def client_error(error: Any) -> str:
        problem = error.response.get("Error", {})
        return f"AWS refused {error.operation_name}: {problem.get('Code', '?')}: {problem.get('Message', '')}".strip()

    def unreachable(error: Any) -> str:
        url = error.kwargs.get("endpoint_url", "the endpoint")
        return (
            f"cannot reach {url}: is the local cloud still running? (start it with `ecrm local up`; "
            "a local cloud that was killed leaves a stale .local-cloud/state.json)"
        )

    return [
        (aws.NoCredentialsError, lambda _: "no AWS credentials found: configure a profile or AWS_* variables"),
        (aws.PartialCredentialsError, lambda e: f"incomplete AWS credentials: {e}"),
        (aws.NoRegionError, lambda _: "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or pass --region"),
        (aws.ProfileNotFound, lambda e: f"{e}"),
        (aws.EndpointConnectionError, unreachable),
        (aws.ConnectTimeoutError, unreachable),
        (aws.ClientError, client_error),
    ]


@functools.cache
def _explainers() -> list[tuple[type[BaseException], Callable[[Any], str | None]]]:
    import urllib.error

    return [
        *_botocore_explainers(),
        (urllib.error.HTTPError, lambda e: f"HTTP {e.code} from {e.url}: {e.reason}"),
        (urllib.error.URLError, _url_error),
        (UnicodeDecodeError, _unicode_error),
        (json.JSONDecodeError, _json_error),
        (OSError, _os_error),
    ]
