"""Exception types of llve.

Every error that bad input can trigger is one of these, and its message names the file or
parameter at fault and what was expected, so a user can act on it without reading the code.
"""


class LlveError(Exception):
    """Base class of every error llve raises on purpose."""


class RawFileError(LlveError):
    """A raw file is missing, unreadable, truncated or not a raw image at all."""


class UnsupportedSensorError(RawFileError):
    """A readable raw file whose sensor llve cannot handle (X-Trans, Foveon, linear DNG...)."""


class InvalidInputError(LlveError, ValueError):
    """An array or parameter has the wrong shape, range, dtype or value (NaNs, odd sizes, ...)."""


class DatasetNotFoundError(LlveError, FileNotFoundError):
    """A real dataset is missing or laid out differently from what its loader expects."""


class CheckpointError(LlveError):
    """A checkpoint file is corrupt, truncated or does not match the model it is loaded into."""


class UnknownNameError(LlveError, KeyError):
    """An unknown scale, paper, model or preset name was asked for."""

    def __str__(self) -> str:  # KeyError would quote the message; keep it readable
        return str(self.args[0]) if self.args else ""
