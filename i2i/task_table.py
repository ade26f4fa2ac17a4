"""The one table of tasks: every place that names a task reads it from here.

A task is a family of models run the same way (``sr``, ``sketch2photo``, ``seg``, ``digits``,
``cyclegan``). :data:`TASKS` gives, for each: the names users may type for it (``--task``),
the recipes that train it, its inference pipeline (:mod:`i2i.pipelines`), its tool front-end
(:mod:`i2i.apps`), its Hugging Face ``pipeline_tag`` and its demo tab. What used to be six
tables (``inference.TASK_ALIASES``, ``pipelines._PIPELINES``, ``apps.APPS``,
``hub.PIPELINE_TAGS``, ``apps.demo.TABS``, each recipe's ``task``) is derived from it.

Foundation: this module imports nothing of i2i but its errors, so both wings can read it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import CheckpointError

__all__ = ["Task", "TASKS", "ALIASES", "resolve_task", "task_of_recipe", "pipeline_of", "app_of", "hub_tag",
           "demo_tabs"]


@dataclass(frozen=True)
class Task:
    """One task.

    Attributes:
        name: the canonical name (a model card's ``task``).
        aliases: other names accepted for ``--task`` (the canonical name is always accepted).
        recipes: the recipe types (``recipe.type`` in YAML) whose models are of this task.
        pipeline: ``(module under i2i.pipelines, class name)``.
        app: the module under :mod:`i2i.apps` that runs it in ``i2i-infer`` / ``i2i-eval``.
        hub_tag: the Hugging Face ``pipeline_tag`` of its pretrained folders.
        demo_tab: the demo's tab title (None: no tab).
    """

    name: str
    aliases: tuple[str, ...]
    recipes: tuple[str, ...]
    pipeline: tuple[str, str]
    app: str
    hub_tag: str
    demo_tab: str | None


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("sr", ("srgan", "srresnet", "realesrgan", "realesrnet"), ("sr", "realesr"), ("super_resolution", "SuperResolutionPipeline"), "super_resolution",
         "image-to-image", "Super-resolution"),
    Task("sketch2photo", ("pix2pix",), ("pix2pix",), ("pix2pix", "Pix2PixPipeline"), "pix2pix",
         "image-to-image", "Sketch → photo"),
    Task("seg", ("segmentation",), ("seg_adversarial",), ("segmentation", "SegmentationPipeline"), "segmentation",
         "image-segmentation", "Segmentation"),
    Task("digits", ("gan", "dcgan", "cgan", "acgan"), ("gan", "cgan", "acgan"), ("digits", "DigitsPipeline"), "digits",
         "unconditional-image-generation", "Digits"),
    Task("cyclegan", (), ("cyclegan",), ("cyclegan", "CycleGANPipeline"), "cyclegan",
         "image-to-image", "CycleGAN"),
)}

ALIASES: dict[str, str] = {**{a: t.name for t in TASKS.values() for a in t.aliases}, **{t: t for t in TASKS}}
"""Every name ``--task`` accepts -> the canonical task."""

_BY_RECIPE: dict[str, str] = {r: t.name for t in TASKS.values() for r in t.recipes}


def resolve_task(name: str) -> str:
    """The canonical task for ``name`` (a task or an alias); one line naming the choices otherwise."""
    if name not in ALIASES:
        raise CheckpointError(f"unknown task {name!r}; expected one of {', '.join(sorted(ALIASES))}")
    return ALIASES[name]


def task_of_recipe(recipe_type: str) -> str:
    """The task whose models the recipe ``recipe_type`` trains."""
    if recipe_type not in _BY_RECIPE:
        raise CheckpointError(f"unknown recipe {recipe_type!r}; expected one of {', '.join(sorted(_BY_RECIPE))}")
    return _BY_RECIPE[recipe_type]


def pipeline_of(task: str) -> tuple[str, str]:
    return TASKS[task].pipeline


def app_of(task: str) -> str:
    return TASKS[task].app


def hub_tag(task: str) -> str:
    """The Hub ``pipeline_tag`` (``image-to-image`` for a task not in the table)."""
    return TASKS[task].hub_tag if task in TASKS else "image-to-image"


def demo_tabs() -> dict[str, str]:
    """task -> tab title, in the table's order (the demo's tab order)."""
    return {t.name: t.demo_tab for t in TASKS.values() if t.demo_tab}
