"""The library's one error type for problems a person can fix: what is wrong, and what to do.

    try:
        parsed = parsing.parse_text(text)
    except PlaygroundError as e:          # SequenceFileError, BundleError, ESMError, LessonError ...
        show_error(e.message, e.hint)     # playground.ui.layout.show_error: a friendly box, no traceback

``message`` says what is wrong and where (the file, line, field, letter); ``hint`` says what to do
(or is None). ``str(e)`` is the message followed by the hint, so a log line or a test's
``match=`` reads the whole story. Every user-facing error of the library subclasses it and keeps
its own name and extra fields (``SequenceFileError.line``, ``LessonError.file``/``.field``,
``SettingError.field`` ...). It is a ``ValueError``, so ``except ValueError`` still catches it.
"""
from __future__ import annotations


class PlaygroundError(ValueError):
    """A problem the person using the playground caused and can fix: ``message`` and ``hint``."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message    # what is wrong (and where)
        self.hint = hint          # what to do, or None
        super().__init__(full_text(message, hint))


def full_text(message: str, hint: str | None) -> str:
    """The message followed by the hint (left out when the message already says it)."""
    return message if not hint or hint in message else f"{message} {hint}"


__all__ = ["PlaygroundError", "full_text"]
