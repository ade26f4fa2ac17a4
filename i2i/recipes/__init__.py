"""Recipes; importing a module registers its classes.

A recipe's ``task`` is not spelled in the recipe: it is read here from the one task table
(:data:`i2i.task_table.TASKS`), and a registered recipe missing from the table is an error.
"""
from ..registry import RECIPES
from ..task_table import task_of_recipe
from . import cyclegan, digits, pix2pix, real_esrgan, segmentation, super_resolution  # noqa: F401

for _name in RECIPES.list():
    RECIPES.get(_name).task = task_of_recipe(_name)  # type: ignore[attr-defined]
