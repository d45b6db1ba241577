"""What `exosuit` exits with: one code per kind of outcome, so a script can tell a refusal
from a timeout, a typo or a server that is down (docs/cli.md lists them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1  # the answer is no: 403 or 409 (four-eyes, role, gate not open), a broken audit chain
    USAGE = 2  # the command line is wrong (argparse's own code)
    NOT_FOUND = 3  # no such task, gate, template, webhook or user (404)
    INVALID = 4  # the server refused the request's content (422, 413): the field errors are printed
    TIMED_OUT = 5  # `wait` ran out of --timeout before the task got there
    UNAUTHORIZED = 6  # no valid token (401)
    UNAVAILABLE = 7  # the server did not answer, was overloaded (429) or a dependency was down (503)
    NOT_SET_UP = 8  # what the command needs is missing: a token, or a data dir or database here


def for_status(status: int) -> ExitCode:
    """The exit code of an HTTP error answer."""
    if status == 401:
        return ExitCode.UNAUTHORIZED
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (413, 422):
        return ExitCode.INVALID
    if status == 429 or status >= 500:
        return ExitCode.UNAVAILABLE
    return ExitCode.REFUSED
