"""Losses; importing a module registers its classes."""
from . import adversarial, classification, perceptual, pixel  # noqa: F401
