"""Hugging Face-style sharing: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``.

A pretrained folder (:func:`i2i.runs.write_pretrained`) holds ``config.json``, one
``<slot>/config.json`` + ``<slot>/model.safetensors`` per network and a model card
``README.md`` (task, training data, metrics, the command that made it). ``from_pretrained``
reads such a folder, today's exports and run directories, or a Hugging Face repo id through
``huggingface_hub``'s cache (``local_files_only=True`` never touches the network).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from . import runs
from .errors import CheckpointError
from .task_table import TASKS

PIPELINE_TAGS = {name: t.hub_tag for name, t in TASKS.items()}
"""task -> the Hub's ``pipeline_tag``, from the task table."""


def _last_eval(run_dir: Path | None) -> dict[str, float]:
    """The last evaluation row of the run's ``metrics.jsonl`` (``eval/…`` keys), if there is one."""
    f = run_dir / "metrics.jsonl" if run_dir is not None else None
    if f is None or not f.is_file():
        return {}
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    if not evals:
        return {}
    return {"step": evals[-1]["step"], **{k[5:]: v for k, v in evals[-1].items() if k.startswith("eval/")}}


def model_card(saved: runs.SavedModel, run_dir: Path | None = None, name: str | None = None) -> str:
    """A model card (``README.md``) in the Hub's format: YAML metadata, then what the model is,
    the data it was trained on, its last evaluation, the command that made it and how to load it."""
    cfg = saved.config or {}
    data = cfg.get("data") or {}
    from .readers import card_entry

    name = name or cfg.get("name") or saved.recipe.get("type", "model")
    metrics = _last_eval(run_dir)
    nets = ", ".join(f"`{s}`: {spec.get('type')}" for s, spec in saved.specs.items())
    tag = PIPELINE_TAGS.get(saved.task, "image-to-image")
    conditional = bool((saved.meta or {}).get("conditional")) and tag == "unconditional-image-generation"
    # the Hub has no tag for class-conditional generation: a conditional digit GAN gets none rather than a wrong one
    head = ["---", "library_name: i2i"] + ([] if conditional else [f"pipeline_tag: {tag}"])
    lines = head + ["tags:", "- i2i", "- gan", f"- {saved.recipe.get('type')}"] + \
        (["- class-conditional-image-generation"] if conditional else []) + ["---", "",
             f"# {name}", "",
             f"An i2i model for the task `{saved.task}` (recipe `{saved.recipe.get('type')}`), "
             f"weights from training step {saved.step}; networks: {nets}.", "",
             "## Training data", "",
             f"`data.type: {data.get('type')}`, `data.root: {data.get('root') or '(the embedded default set)'}`.", "",
             "## Evaluation", ""]
    if metrics:
        lines += [f"At step {metrics.pop('step')} (`tools/eval.py` recomputes these):", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in metrics.items() if isinstance(v, (int, float))]
    else:
        lines += ["No evaluation was logged for this run."]
    stored = (card_entry(saved.path).get("card") or {}).get("provenance") or {}
    if stored.get("licence"):  # a foreign file's architecture licence (i2i.foreign.LICENCES)
        note = ((card_entry(saved.path).get("card") or {}).get("notes") or {}).get("licence_note")
        lines += ["", "## Licence", "", f"Architecture: {stored['licence']}." + (f" Note: {note}." if note else "")]
    lines += ["", "## How it was made", "", "The run's resolved configuration is in `config.json` (key `config`); "
              "written back to a YAML file it reproduces the run:", "", "```bash",
              "python -c \"import json, yaml; print(yaml.safe_dump(json.load(open('config.json'))['config']))\" > run.yaml",
              "i2i-train run.yaml", "```", "", "## Use", "", "```python", "import i2i",
              "pipe = i2i.from_pretrained(\"<this folder or repo id>\")", "```", ""]
    return "\n".join(lines)


def save_pretrained(source: str | Path, folder: str | Path, name: str | None = None) -> Path:
    """Write the model at ``source`` (a run, export, checkpoint or pretrained folder) as a
    pretrained folder with its model card; returns the folder."""
    from .inference import resolve_name
    from .readers import card_entry

    src = resolve_name(source)
    saved = runs.read_saved(src)
    folder = Path(folder).expanduser()
    # nothing the export did not write is ever replaced: a run, the source, a user's folder are refused
    runs.check_output_folder(folder, [src, saved.path], runs.is_pretrained_folder, "pretrained folder")
    run_dir = src if (src / "metrics.jsonl").is_file() else (saved.path.parent if (saved.path.parent / "metrics.jsonl").is_file() else None)
    info = runs.export_info(saved.task, {**saved.config, "recipe": saved.recipe, "models": saved.specs},
                            list(saved.weights), saved.meta, saved.step, [])
    info.update(card_entry(saved.path))  # the model card travels with the weights (i2i.card)
    runs.write_pretrained(folder, saved.weights, info, model_card(saved, run_dir, name))
    return folder


def interpolate_pretrained(source_a: str | Path, source_b: str | Path, alpha: float, folder: str | Path,
                           name: str | None = None) -> Path:
    """ESRGAN's network interpolation (Wang et al. 2018, §3.4): every floating-point weight
    ``(1 - alpha) · A + alpha · B`` of two models with the same networks (a PSNR-oriented model and
    its GAN fine-tune, say), written as a pretrained folder; integer buffers come from A. ``alpha``
    in [0, 1]: 0 gives A, 1 gives B."""
    import math

    from .errors import ConfigError
    from .inference import resolve_name
    from .readers import card_entry

    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ConfigError(f"expected a number in [0, 1], got {alpha}", "--alpha")
    src_a, src_b = resolve_name(source_a), resolve_name(source_b)
    a, b = runs.read_saved(src_a), runs.read_saved(src_b)
    if a.recipe != b.recipe or a.specs != b.specs or set(a.weights) != set(b.weights):
        raise CheckpointError(f"{src_b}: cannot be interpolated with {src_a}: the recipes or networks differ "
                              f"({a.recipe.get('type')}: {a.specs} vs {b.recipe.get('type')}: {b.specs})")
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for slot, sd in a.weights.items():
        other = b.weights[slot]
        if set(sd) != set(other) or any(sd[k].shape != other[k].shape for k in sd):
            raise CheckpointError(f"{src_b}: {slot} weights do not match {src_a}'s keys and shapes")
        weights[slot] = {k: ((1.0 - alpha) * v.double() + alpha * other[k].double()).to(v.dtype) if v.is_floating_point() else v
                         for k, v in sd.items()}
    folder = Path(folder).expanduser()
    runs.check_output_folder(folder, [src_a, a.path, src_b, b.path], runs.is_pretrained_folder, "pretrained folder")
    info = runs.export_info(a.task, {**a.config, "recipe": a.recipe, "models": a.specs}, list(weights), a.meta, a.step, [])
    info.update(card_entry(a.path))
    info["interpolation"] = {"a": str(src_a), "b": str(src_b), "alpha": alpha}
    card = model_card(a, None, name or f"{a.recipe.get('type', 'model')} interpolated") + (
        f"\n## Interpolation\n\nThe weights are (1 - {alpha:g}) · `{src_a}` + {alpha:g} · `{src_b}` "
        "(ESRGAN's network interpolation).\n")
    runs.write_pretrained(folder, weights, info, card)
    return folder


def save_pretrained_file(source: str | Path, folder: str | Path, name: str | None = None) -> Path:
    """Write one weights file made by another project (a ``.pth`` of Real-ESRGAN, SwinIR, junyanz, …)
    as a pretrained folder: its own state dict (the peer's layout, read safely) under
    ``<slot>/model.safetensors``, its card in ``config.json`` (source name and sha256, architecture,
    licence) and a README model card. :class:`i2i.foreign.ForeignFolderReader` reads it back."""
    from .foreign import FOREIGN_KEY
    from .readers import read_model
    from .weight_files import read_state_dict

    src = Path(source).expanduser()
    folder = Path(folder).expanduser()
    runs.check_output_folder(folder, [src], runs.is_pretrained_folder, "pretrained folder")
    model = read_model(src, "cpu")
    card = model.card
    slot = card.inference_slots[0]
    sd = {k: v.contiguous() for k, v in read_state_dict(src).items()}
    arch = card.provenance.architecture.get(slot, "?")
    info = {"task": card.task, "version": 1, "models": {slot: {"type": f"{card.provenance.format}:{arch}"}},
            FOREIGN_KEY: {"name": src.name, "slot": slot, "sha256": card.provenance.sha256.get(src.name)},
            "card": card.to_dict()}
    note = card.notes.get("licence_note")
    title = name or src.stem
    readme = "\n".join([
        "---", "library_name: i2i", f"pipeline_tag: {PIPELINE_TAGS.get(card.task, 'image-to-image')}", "tags:", "- i2i",
        f"- {arch}", "---", "", f"# {title}", "",
        f"`{src.name}` (sha256 `{card.provenance.sha256.get(src.name)}`), a {arch} network "
        f"({card.provenance.format} reader), task `{card.task}`, scale {card.scale}; stored unchanged in its own layout.", "",
        "## Licence", "", f"Architecture: {card.provenance.licence or 'unknown'}." + (f" Note: {note}." if note else "") +
        " The weights may carry their publisher's own terms.", "",
        "## Use", "", "```python", "import i2i", "pipe = i2i.from_pretrained(\"<this folder or repo id>\")", "```", ""])
    runs.write_pretrained(folder, {slot: sd}, info, readme)
    return folder


def resolve_pretrained(name_or_path: str | Path, local_files_only: bool = False, revision: str | None = None,
                       cache_dir: str | Path | None = None) -> Path:
    """A local folder as it is; a shipped model's name (``srresnet_x4``) as its folder; otherwise a
    Hub repo id (``owner/name``) fetched into, or found in, the Hugging Face cache by
    ``huggingface_hub.snapshot_download``."""
    from .inference import resolve_name

    p = resolve_name(name_or_path)
    if p.exists() or p.with_name(p.name + ".old").exists():  # .old: a save killed mid-swap (runs.publish_folder)
        return p
    text = str(name_or_path)
    if text.count("/") != 1 or text.startswith((".", "/", "~")) or "\\" in text:
        from .inference import SHIPPED_MODELS

        raise CheckpointError(f"{text}: no such folder, not a shipped model ({', '.join(SHIPPED_MODELS)}) "
                              "and not a Hugging Face repo id (owner/name)")
    if p.parent.is_dir():  # `ex/pre` where ex/ is a local folder: a path, never a repo id
        raise CheckpointError(f"{text}: no such folder (read as a local path because {p.parent}/ exists here; "
                              "for a Hub repo id whose owner is also a local folder's name, run from another folder)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, revision=revision, local_files_only=local_files_only,
                                      cache_dir=str(cache_dir) if cache_dir else None))
    except LocalEntryNotFoundError:
        raise CheckpointError(f"{text}: not in the Hugging Face cache{' (local_files_only)' if local_files_only else ''}"
                              " and not downloadable now") from None
    except HfHubHTTPError as e:
        raise CheckpointError(f"{text}: the Hub refused it ({str(e).splitlines()[0][:120]})") from None


def from_pretrained(name_or_path: str | Path, device: str | torch.device | None = None, local_files_only: bool = False,
                    revision: str | None = None, cache_dir: str | Path | None = None) -> Any:
    """The task's pipeline for a pretrained folder, export, run or Hub repo id; the networks are
    its ``model.nets`` (``pipe.model.generator`` for the one-generator tasks)."""
    from .inference import load_model
    from .pipelines import pipeline_for

    path = resolve_pretrained(name_or_path, local_files_only, revision, cache_dir)
    return pipeline_for(load_model(path, device=device))


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a pretrained folder to the Hub (needs network and a token: ``huggingface-cli login``); the URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: not a pretrained folder (write one with i2i-export RUN --format pretrained)")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return str(api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Upload i2i model"))
