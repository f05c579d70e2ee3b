"""The one exception hierarchy of the project.

`evit_search` subclasses :class:`EfficientViTError`, so a command line edge that catches it
catches every user-facing error of both packages.
"""


class EfficientViTError(Exception):
    """Base class of every error this project raises for a user's mistake or a failed step."""


class ConfigError(EfficientViTError, ValueError):
    """An :class:`~efficientvit.EfficientViTConfig` (or an override of one) breaks a rule.

    The message names the field path, the value and the rule, e.g.
    ``stages[1].dim=130 is not divisible by num_heads=4``.
    """

    def __init__(self, field: str, value, rule: str):
        self.field, self.value, self.rule = field, value, rule
        super().__init__(f"{field}={value!r} {rule}")


class UnknownModelError(EfficientViTError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class CheckpointError(EfficientViTError):
    """A state dict that cannot be converted or loaded."""
