"""Error types whose message is meant to be shown to a user as one line.

Tools catch :class:`I2IError` at the top level, print ``error: <message>`` and exit
with a non-zero status; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import errno
import os


class I2IError(Exception):
    """Base class for user-facing errors (bad config, bad data, bad checkpoint)."""


def one_line(text: str) -> str:
    """Escape line breaks and other unprintable characters (``\\n``, ``\\u2028``…)."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def short_repr(value: object, limit: int = 80) -> str:
    """A bounded ``repr`` for error messages: a huge or deeply shared value (a YAML alias bomb)
    is never expanded in full; ``reprlib`` stops at a few items and levels before ``limit`` cuts."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, limit, limit, limit
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConfigError(I2IError, ValueError):
    """A config key is unknown, has the wrong type, or names something that does not exist."""

    def __init__(self, message: str, key: str | None = None):
        # keys come from user YAML and may hold any character: keep the message on one line
        key = one_line(key) if key else key
        message = one_line(message)
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)

    def at(self, prefix: str) -> "ConfigError":
        """The same error re-anchored under ``prefix`` (``model.generator`` + ``z_dim``)."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        msg = str(self)[len(self.key) + 2:] if self.key else str(self)
        return ConfigError(msg, key)


class DataError(I2IError):
    """A data file is missing, corrupt or not in the expected format. Names the file."""


class CheckpointError(I2IError):
    """A checkpoint or export is missing, incomplete, incompatible or unsafe."""


class OutputError(CheckpointError):
    """An output cannot be written (disk full, file too large, read-only, target in the way):
    ``<path>: cannot write: <reason>``. A :class:`CheckpointError` so that existing callers
    which catch that keep working."""


_WRITE_REASONS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit: ulimit -f, or the file system's maximum)",
}


def write_reason(e: BaseException) -> str | None:
    """Why a write failed, in words, or None when ``e`` is not a write failure.

    Covers ``OSError`` (its errno), safetensors' ``SafetensorError`` (which carries the OS
    error only in its text: ``… (os error 28)``) and ``torch.save``'s zip writer, which reports
    a full disk as ``RuntimeError: … unexpected pos`` / ``file write failed``.
    """
    import re

    if isinstance(e, OSError):
        code = e.errno
    elif type(e).__name__ == "SafetensorError" and (m := re.search(r"os error (\d+)", str(e))):
        code = int(m.group(1))
    elif isinstance(e, RuntimeError) and ("unexpected pos" in str(e) or "file write failed" in str(e)):
        code = errno.ENOSPC
    else:
        return None
    if code in _WRITE_REASONS:
        return _WRITE_REASONS[code]
    return getattr(e, "strerror", None) or (os.strerror(code) if code else None) or str(e).strip() or type(e).__name__


def write_error(path: object, e: BaseException) -> OutputError | None:
    """``<path>: cannot write: <reason>`` for a write failure, else None (re-raise ``e``)."""
    reason = write_reason(e)
    return None if reason is None else OutputError(f"{path}: cannot write: {reason}")


class MetricError(I2IError, ValueError):
    """A metric cannot be computed from these inputs (the message says why)."""
