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


class DippasWarning(UserWarning):
    """Something the user should know about their input; the CLI prints it as one line."""
