"""Recipes; importing a module registers its classes."""
from . import cyclegan, digits, pix2pix, segmentation, super_resolution  # noqa: F401
