"""The one exception type a user can cause; the CLI prints it as a single line and exits non-zero."""


class UserError(Exception):
    """A problem with the user's input or parameters.

    The message names the file, key or parameter and what to do about it. It must fit on one line.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
