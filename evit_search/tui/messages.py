"""Messages that screens post for the App to act on: the App owns the storage (loading, export)
and the screen stack, the screens own everything else."""

from __future__ import annotations

from textual.message import Message


class StudyPicked(Message):
    def __init__(self, name: str):
        super().__init__()
        self.name = name


class ExportRequested(Message):
    """Export one trial (config YAML, ONNX, state dict): the App runs it off the UI thread."""

    def __init__(self, number: int):
        super().__init__()
        self.number = number
