"""The one exception type for mistakes a user can fix (bad config, missing data, bad URL), the
exit codes of the commands, and the integer check that constructors use to quote a bad argument
(as Optuna's do)."""

import numbers
from typing import Any

__all__ = [
    "EXIT_DATABASE_LOST",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_USER_ERROR",
    "UserError",
    "check_int",
]

EXIT_USER_ERROR = 2  # bad input: one line says what is wrong and how to fix it (as click's usage)
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # SIGTERM: 128 + SIGTERM
EXIT_DATABASE_LOST = 75  # a worker lost its database server (EX_TEMPFAIL): a re-run resumes


class UserError(Exception):
    """A problem with the user's input. The CLI prints its message as one line and exits 2.

    The message names what is wrong and how to fix it; it never needs a traceback.
    """


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int,
    error: type[Exception] = ValueError,
    integral: bool = False,
) -> None:
    """Raises ``error`` quoting ``value`` unless it is an ``int`` (not a bool) >= ``minimum``.

    Args:
        name: The argument's name, as the caller spells it.
        value: The value given.
        minimum: The smallest value allowed.
        error: The exception type to raise (a :class:`ValueError` subclass, e.g. ``SpecError``).
        integral: Also accept other integers (NumPy's), where the value is never stored as
            JSON (a spec's is: there only ``int`` will do).
    """
    kinds = numbers.Integral if integral else int
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, but got {name}={value!r}.")
