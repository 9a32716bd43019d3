"""Exceptions with messages meant for people: the CLI prints them as one line."""

from __future__ import annotations


class PaperbotError(Exception):
    """Base class: the message is complete and readable on its own."""

    exit_code = 1


class InputError(PaperbotError):
    """Bad usage or malformed input (a file, a query, a config value). CLI exit code 2."""

    exit_code = 2


class SourceError(PaperbotError):
    """A remote source failed (network, HTTP status, unparseable response). CLI exit code 1."""

    exit_code = 1
