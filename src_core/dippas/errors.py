"""Exceptions raised by the core on bad input.

Every user-facing failure caused by what the user passed (a corrupt file, an
image that is too small, a NaN fingerprint, an unknown option) is raised as
:class:`DippasInputError`, whose message is one line that names the problem.
The CLI turns it into ``dippas: error: <message>`` and exit code 2.
"""

from __future__ import annotations


class DippasInputError(ValueError):
    """Bad input: the message is a single line naming the problem."""


class Cancelled(Exception):
    """Raised when a long computation is stopped through its cancel token."""


def one_line(exc: BaseException) -> str:
    """The one-line message of any error: the message of bad input, else ``Type: message``.

    The one error formatter of the CLI, batch records and the plugin.
    """
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if isinstance(exc, DippasInputError):
        return msg or type(exc).__name__
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


class DippasWarning(UserWarning):
    """Something the user should know about their input; the CLI prints it as one line."""
