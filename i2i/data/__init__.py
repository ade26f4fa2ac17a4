"""Datasets; importing a module registers its classes."""
from . import digits, paired, segmentation, super_resolution, unpaired  # noqa: F401
