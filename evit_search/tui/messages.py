"""Messages that screens post for the App to act on (the App owns the storage: loading, export;
and the screen stack; the screens own everything else), and the base of the widgets' messages
about one trial."""

from __future__ import annotations

from textual.message import Message


class StudyPicked(Message):
    def __init__(self, name: str):
        super().__init__()
        self.name = name


class TrialMessage(Message):
    """A message about one trial (``number`` None: none, e.g. an empty table)."""

    def __init__(self, number: int | None):
        super().__init__()
        self.number = number


class ExportRequested(TrialMessage):
    """Export one trial (config YAML, ONNX, state dict): the App runs it off the UI thread."""
