"""Errors the application reports to users as one line (`error: ...`, exit status 2)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a missing or unreadable file, an unusable face, an invalid option value.

    The message is a complete sentence naming the offending file or value; the CLI prints it as
    `error: <message>` and exits with status 2, leaving no output file behind.
    """


class MissingCheckpointsError(InputError):
    """The requested engine or driver needs weights that are not in the checkpoint directory."""


class RenderCancelled(Exception):
    """A render stopped because its `cancel` event was set (or the user pressed Ctrl-C / sent SIGTERM).

    Nothing is left at the output path and no temporary file beside it.
    """
