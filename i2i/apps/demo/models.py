"""The demo's models: what ``--checkpoint`` and ``--task`` load, by tab."""
from __future__ import annotations

from collections.abc import Sequence

from ...errors import ConfigError
from ...inference import load_model, shipped_model
from .shared import SHIPPED_MODEL, SHIPPED_NAME, TABS, DemoModel


def load_demo_models(checkpoints: Sequence[str] = (), tasks: Sequence[str] = (), device: str | None = None,
                     shipped_sr: bool | None = None) -> dict[str, list[DemoModel]]:
    """The models of the page, by task (in :data:`TABS` order).

    ``checkpoints``: runs, exports, checkpoints, pretrained folders or Hub repo ids
    (:func:`i2i.hub.resolve_pretrained`). ``tasks``: only these tabs (aliases such as
    ``srgan`` are accepted); a task other than SR needs a checkpoint. ``shipped_sr``: add
    the shipped ×4 SRResNet (default: when the SR tab is shown, i.e. no ``tasks`` or ``sr``
    among them, and always with no checkpoint at all).
    """
    from ...hub import resolve_pretrained
    from ...pipelines import pipeline_for
    from ...task_table import ALIASES as TASK_ALIASES

    wanted = []
    for t in tasks:
        if t not in TASK_ALIASES:
            raise ConfigError(f"unknown task {t!r}; expected one of {', '.join(sorted(TASK_ALIASES))}", "--task")
        wanted.append(TASK_ALIASES[t])
    for t in wanted:
        if t not in TABS:
            raise ConfigError(f"the demo has no tab for task {t!r} (tabs: {', '.join(TABS)})", "--task")
    if shipped_sr is None:
        shipped_sr = not wanted or "sr" in wanted
    out: dict[str, list[DemoModel]] = {t: [] for t in TABS}
    if shipped_sr:
        model = load_model(shipped_model(SHIPPED_MODEL), task="sr", device=device)
        out["sr"].append(DemoModel(SHIPPED_NAME, model, pipeline_for(model)))
    for ckpt in checkpoints:
        model = load_model(resolve_pretrained(ckpt), device=device)
        task = model.card.task
        if task not in TABS:
            raise ConfigError(f"{ckpt}: the demo has no tab for task {task!r} (tabs: {', '.join(TABS)})",
                              "--checkpoint")
        if wanted and task not in wanted:
            raise ConfigError(f"{ckpt}: a {task!r} model, but --task asks for {', '.join(wanted)}", "--checkpoint")
        out[task].append(DemoModel(str(ckpt), model, pipeline_for(model)))
    for t in wanted:
        if not out[t]:
            raise ConfigError(f"task {t!r} has no shipped model: give its --checkpoint", "--task")
    return {t: ms for t, ms in out.items() if ms}
