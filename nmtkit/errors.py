"""The one exception type for user mistakes.

A `UserError` is something the user can fix (a bad recipe, a missing file, mismatched line
counts). The CLI turns it into a one-paragraph message and exit code 2, without a traceback.
Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input, reported as one paragraph and exit code 2."""

    exit_code = 2
