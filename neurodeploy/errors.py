"""Errors a user can fix. The CLI turns them into exit code 2 and one line; the Python API
(docs/api.md) raises them as they are."""


class UserError(Exception):
    """Bad input or environment: one line saying which file, what is wrong and what to do."""

    exit_code = 2


class OptionError(UserError, ValueError):
    """An argument out of its range or not one of its choices (a CLI option, or a keyword of the Python API)."""


class RunFolderError(UserError):
    """A path that is not the run folder (or run report) an operation needs."""
