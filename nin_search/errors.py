"""The one exception type for mistakes a user can fix (bad config, missing data, bad URL)."""

__all__ = ["UserError"]


class UserError(Exception):
    """A problem with the user's input. The CLI prints its message as one line and exits 2.

    The message names what is wrong and how to fix it; it never needs a traceback.
    """
