"""Recipes; importing a module registers its classes."""
from . import cyclegan, digits, pix2pix, real_esrgan, segmentation, super_resolution  # noqa: F401
