"""Datasets; importing a module registers its classes."""
from . import digits  # noqa: F401
