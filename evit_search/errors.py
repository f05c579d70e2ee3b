"""Errors of the tool. All derive from efficientvit's base, so the CLI catches one class."""

from efficientvit.errors import EfficientViTError


class UserError(EfficientViTError):
    """A user's mistake (bad flag, bad file, missing data): one line, non-zero exit."""


class DataError(UserError):
    """A dataset that cannot be found or read."""


class SpaceError(UserError):
    """A search-space file that breaks a rule; the message names file and key."""


class StorageError(UserError):
    """An unknown study or an unreachable storage."""


class MeasurementError(EfficientViTError):
    """A measurement that failed (export error, out of memory...); recorded as a failure."""


class TrainingFailed(EfficientViTError):
    """A training run that diverged (NaN/inf loss) or broke; recorded as a failure."""
