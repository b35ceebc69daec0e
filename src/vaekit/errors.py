"""Errors that carry a message meant for a person: what went wrong and how to fix it.

The CLI prints these without a traceback; everything else is a bug and keeps its traceback.
"""


class VaekitError(Exception):
    """A problem with the user's input, data, checkpoint or environment (not a bug)."""


class DataError(VaekitError):
    """A data set is missing, truncated, mislabelled or of an unusable shape."""


class CheckpointError(VaekitError):
    """A checkpoint or run directory cannot be used for what was asked."""


class ConfigError(VaekitError):
    """A recipe or override names an unknown key or gives a value of the wrong kind."""


class TrainingDiverged(VaekitError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class VaekitWarning(UserWarning):
    """Something the user asked for works but costs more than they likely expect; the message names the fix.
    The CLI prints these as one ``warning:`` line."""


class SlowPrecisionWarning(VaekitWarning):
    """``train.precision = 'bfloat16'`` on a CPU that emulates bfloat16 arithmetic (many times slower)."""
