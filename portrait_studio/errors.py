"""Errors the application reports to users as one line (`error: ...`, exit status 2)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a missing or unreadable file, an unusable face, an invalid option value.

    The message is a complete sentence naming the offending file or value; the CLI prints it as
    `error: <message>` and exits with status 2, leaving no output file behind. It is kept to one line
    of at most `MAX_MESSAGE` characters, whatever user value ended up in it.
    """

    MAX_MESSAGE = 600

    def __init__(self, message: object = "") -> None:
        text = " ".join(str(message).split())
        if len(text) > self.MAX_MESSAGE:
            text = text[: self.MAX_MESSAGE - 3] + "..."
        super().__init__(text)


class MissingCheckpointsError(InputError):
    """The requested engine or driver needs weights that are not in the checkpoint directory."""


class RenderCancelled(Exception):
    """A render stopped because its `cancel` event was set (or the user pressed Ctrl-C / sent SIGTERM).

    Nothing is left at the output path and no temporary file beside it.
    """
