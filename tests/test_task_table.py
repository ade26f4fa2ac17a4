"""The one task table: every place that names a task reads it from i2i.task_table."""
from __future__ import annotations

import importlib

import pytest

from i2i import apps, hub, inference, pipelines
from i2i.apps import demo
from i2i.errors import CheckpointError
from i2i.registry import RECIPES
from i2i.task_table import ALIASES, TASKS, demo_tabs, resolve_task, task_of_recipe


def test_every_recipe_is_in_the_table_and_takes_its_task_from_it() -> None:
    assert RECIPES.list() == sorted(r for t in TASKS.values() for r in t.recipes)
    for name in RECIPES.list():
        assert RECIPES.get(name).task == task_of_recipe(name) and RECIPES.get(name).task in TASKS
    assert {n: task_of_recipe(n) for n in ("sr", "pix2pix", "seg_adversarial", "gan", "cgan", "acgan", "cyclegan")} == {
        "sr": "sr", "pix2pix": "sketch2photo", "seg_adversarial": "seg", "gan": "digits", "cgan": "digits",
        "acgan": "digits", "cyclegan": "cyclegan"}
    with pytest.raises(CheckpointError, match="unknown recipe 'nope'; expected one of acgan, cgan, cyclegan"):
        task_of_recipe("nope")


def test_the_old_tables_are_the_tables_view() -> None:
    assert inference.TASK_ALIASES == ALIASES
    assert ALIASES["srgan"] == ALIASES["srresnet"] == ALIASES["sr"] == "sr" and ALIASES["pix2pix"] == "sketch2photo"
    assert ALIASES["dcgan"] == ALIASES["acgan"] == "digits" and ALIASES["segmentation"] == "seg"
    assert list(apps.APPS) == list(pipelines._PIPELINES) == list(hub.PIPELINE_TAGS) == list(demo.TABS) == list(TASKS)
    assert hub.PIPELINE_TAGS["seg"] == "image-segmentation" and hub.PIPELINE_TAGS["digits"] == "unconditional-image-generation"
    assert demo.TABS == demo_tabs() and demo.TABS["sketch2photo"] == "Sketch → photo"
    assert resolve_task("cgan") == "digits"
    with pytest.raises(CheckpointError, match="unknown task 'inpainting'"):
        resolve_task("inpainting")


@pytest.mark.parametrize("task", list(TASKS))
def test_each_tasks_pipeline_front_end_and_demo_tab_exist(task: str) -> None:
    module, cls = TASKS[task].pipeline
    assert isinstance(getattr(importlib.import_module(f"i2i.pipelines.{module}"), cls), type)
    app = apps.get_app(task)
    assert all(hasattr(app, f) for f in ("add_infer_args", "infer", "add_eval_args", "evaluate"))
    if TASKS[task].demo_tab:
        assert callable(importlib.import_module(f"i2i.apps.demo.tab_{task}").build)
