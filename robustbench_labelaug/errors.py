"""One exception type for problems a user can fix: the CLI prints it as one line and exits non-zero."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment. The message names the problem and the fix, in one line."""

