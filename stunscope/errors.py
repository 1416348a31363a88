"""Exit codes and the errors that carry them (DESIGN.md: 0 ok, 1 check failed, 2 usage, 3 bad input).

Every headless command maps a failure to one of these and prints one line, never a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_INTERRUPTED = 130


class StunscopeError(Exception):
    """An error a user can act on: printed as one line, mapped to ``exit_code``."""

    exit_code = EXIT_BAD_INPUT


class UsageError(StunscopeError):
    """Wrong flags or arguments (exit 2)."""

    exit_code = EXIT_USAGE


class InputError(StunscopeError):
    """Unreadable, truncated or corrupt input (exit 3); what could be read was already reported."""

    exit_code = EXIT_BAD_INPUT


class CaptureError(InputError):
    """A capture file that is truncated, corrupt or of an unsupported format."""


class CheckFailed(StunscopeError):
    """An assertion or check rule failed (exit 1)."""

    exit_code = EXIT_CHECK_FAILED
