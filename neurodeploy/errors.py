"""Errors a user can fix. The CLI turns them into exit code 2 and one line."""


class UserError(Exception):
    """Bad input or environment: one line saying which file, what is wrong and what to do."""

    exit_code = 2
