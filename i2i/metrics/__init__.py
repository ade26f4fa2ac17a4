"""Metrics (tensors in, accumulate, gather under multi-process evaluation)."""
from . import image  # noqa: F401
