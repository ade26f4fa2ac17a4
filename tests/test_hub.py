"""Hugging Face-style folders: save_pretrained writes the Hub layout and a model card; loading
works from the folder, from today's exports, and from the Hugging Face cache offline."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from i2i import hub, runs
from i2i.errors import CheckpointError
from i2i.inference import load_model


@pytest.fixture(scope="module")
def run(tiny_acgan_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared tiny ACGAN run, with two evaluation rows added to a copy of its metrics log."""
    out = tmp_path_factory.mktemp("hub") / "run"
    shutil.copytree(tiny_acgan_run, out)
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 20, "eval/label_fidelity": 0.5, "eval/frechet_distance": 80.0}) + "\n")
        f.write(json.dumps({"step": 30, "eval/label_fidelity": 0.875, "eval/frechet_distance": 41.25}) + "\n")
    return out


def test_save_pretrained_writes_the_hub_layout_and_a_model_card(run: Path, tmp_path: Path) -> None:
    out = hub.save_pretrained(run, tmp_path / "acgan-digits")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md", "config.json", "discriminator/config.json", "discriminator/model.safetensors",
        "generator/config.json", "generator/model.safetensors"]
    info = json.loads((out / "config.json").read_text())
    assert info["format"] == "i2i-pretrained" and info["task"] == "digits"
    export = json.loads((run / "export" / "config.json").read_text())
    assert json.loads((out / "generator" / "config.json").read_text()) == export["models"]["generator"]
    assert info["step"] == export["step"] > 0
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: i2i\ntags:\n")  # ACGAN is class-conditional: no "unconditional" tag
    assert "pipeline_tag" not in card and "- class-conditional-image-generation" in card
    assert "](https://github.com/)" not in card  # no placeholder link
    assert "At step 30" in card and "| label_fidelity | 0.875 |" in card and "| frechet_distance | 41.25 |" in card
    assert "| label_fidelity | 0.5 |" not in card  # the last evaluation, not an earlier one
    assert "i2i-train run.yaml" in card and "acgan" in card


def test_a_pretrained_folder_loads_the_same_weights(run: Path, tmp_path: Path) -> None:
    out = hub.save_pretrained(run, tmp_path / "m")
    a, b = load_model(run, device="cpu"), load_model(out, device="cpu")
    assert a.task == b.task == "digits" and a.meta == b.meta
    for k, v in a.generator.state_dict().items():
        assert torch.equal(v, b.generator.state_dict()[k]), k


def fake_hub_cache(folder: Path, cache: Path, repo: str, commit: str = "0" * 40) -> None:
    """The layout huggingface_hub's cache uses (models--owner--name/{refs/main, snapshots/<commit>/})."""
    base = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, base / "snapshots" / commit)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)


def test_a_repo_id_resolves_from_the_hugging_face_cache_offline(run: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = hub.save_pretrained(run, tmp_path / "m")
    cache = tmp_path / "hf-cache"
    fake_hub_cache(out, cache, "someone/acgan-digits")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    got = hub.resolve_pretrained("someone/acgan-digits", local_files_only=True, cache_dir=cache)
    assert got == cache / "models--someone--acgan-digits" / "snapshots" / ("0" * 40)
    assert load_model(got, device="cpu").task == "digits"
    with pytest.raises(CheckpointError, match="someone/other: not in the Hugging Face cache"):
        hub.resolve_pretrained("someone/other", local_files_only=True, cache_dir=cache)
    with pytest.raises(CheckpointError, match="not a Hugging Face repo id"):
        hub.resolve_pretrained("no/such/folder")


def test_read_saved_refuses_a_pretrained_folder_missing_a_network(run: Path, tmp_path: Path) -> None:
    out = hub.save_pretrained(run, tmp_path / "m")
    shutil.rmtree(out / "generator")
    with pytest.raises(CheckpointError, match="no weights for generator"):
        runs.build_network(runs.read_saved(out), "generator")


def test_push_to_hub_refuses_a_folder_that_is_not_pretrained(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a pretrained folder"):
        hub.push_to_hub(tmp_path, "someone/x")


def test_from_pretrained_gives_the_tasks_pipeline_with_the_network_as_an_attribute(run: Path, tmp_path: Path) -> None:
    import i2i
    from i2i.pipelines.digits import DigitsPipeline

    out = hub.save_pretrained(run, tmp_path / "m")
    pipe = i2i.from_pretrained(str(out), device="cpu")
    assert isinstance(pipe, DigitsPipeline) and isinstance(pipe.model.generator, torch.nn.Module)
    direct = DigitsPipeline(load_model(run, device="cpu"))
    assert torch.equal(pipe(labels=[3, 7], num=2, seed=1), direct(labels=[3, 7], num=2, seed=1))
    exported = i2i.from_pretrained(run / "export", device="cpu")  # today's exports load the same way
    assert torch.equal(exported(labels=3, num=1, seed=2), pipe(labels=3, num=1, seed=2))


def test_from_pretrained_on_the_shipped_sr_model_upscales(tmp_path: Path) -> None:
    import numpy as np

    import i2i
    from i2i.inference import SHIPPED

    out = hub.save_pretrained(SHIPPED["sr"], tmp_path / "sr")
    assert "pipeline_tag: image-to-image" in (out / "README.md").read_text()
    pipe = i2i.from_pretrained(out, device="cpu")
    img = (np.random.default_rng(0).random((12, 10, 3)) * 255).astype(np.uint8)
    big = pipe(img)
    assert big.shape == (48, 40, 3) and big.dtype == np.uint8
    assert np.array_equal(big, i2i.from_pretrained(SHIPPED["sr"], device="cpu")(img))


def test_network_interpolation_is_the_weighted_sum(tmp_path: Path) -> None:
    """ESRGAN's interpolation: (1 - alpha)·A + alpha·B for every float weight; 0 gives A, 1 gives B."""
    from i2i.cli import run as cli_run
    from i2i.commands import export_main
    from i2i.inference import SHIPPED_MODELS

    a = tmp_path / "a"
    shutil.copytree(SHIPPED_MODELS["srresnet_x4_small"], a)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    sd_a = runs.read_saved(a).weights["generator"]
    sd_b = {k: (v * 0.5 + 0.01 if v.is_floating_point() else v) for k, v in sd_a.items()}  # another model, same networks
    from safetensors.torch import save_file

    save_file(sd_b, str(runs._weights_file(b, "generator")))
    for alpha in (0.0, 0.8, 1.0):
        out = tmp_path / f"i{alpha}"
        assert cli_run(export_main, [str(a), "--interpolate", str(b), "--alpha", str(alpha), "--format", "pretrained",
                                     "-o", str(out)]) == 0
        got = runs.read_saved(out).weights["generator"]
        for k, v in sd_a.items():
            want = (1 - alpha) * v.double() + alpha * sd_b[k].double() if v.is_floating_point() else v
            assert torch.allclose(got[k].double(), want, atol=1e-6) if v.is_floating_point() else torch.equal(got[k], v), k
        assert "## Interpolation" in (out / "README.md").read_text()
    other = tmp_path / "other"
    shutil.copytree(SHIPPED_MODELS["srresnet_x4"], other)  # 64 ch x 16 blocks: not the same networks
    with pytest.raises(CheckpointError, match="cannot be interpolated"):
        hub.interpolate_pretrained(a, other, 0.5, tmp_path / "x")
    with pytest.raises(Exception, match=r"--alpha: expected a number in \[0, 1\]"):
        hub.interpolate_pretrained(a, b, 1.5, tmp_path / "y")
