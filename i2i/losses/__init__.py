"""Losses; importing a module registers its classes."""
from . import adversarial, classification  # noqa: F401
