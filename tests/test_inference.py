"""i2i.inference.load_model: which networks an export gives back (the recipe's inference slots,
plus its discriminators on request), task names and their errors, the shipped model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from i2i import runs
from i2i.engine.build import build_models
from i2i.errors import CheckpointError
from i2i.inference import SHIPPED, TASK_ALIASES, LoadedModel, load_model


def same_weights(net: torch.nn.Module, sd: dict[str, torch.Tensor]) -> bool:
    own = net.state_dict()
    return own.keys() == sd.keys() and all(torch.equal(own[k].cpu(), sd[k]) for k in sd)


def test_the_generator_by_default_and_the_discriminator_on_request(tiny_cgan_run: Path) -> None:
    export = tiny_cgan_run / "export"
    model = load_model(tiny_cgan_run, device="cpu")
    assert isinstance(model, LoadedModel) and list(model.nets) == ["generator"] and model.discriminator is None
    assert model.task == "digits" and model.recipe["type"] == "cgan" and model.meta["num_classes"] == 10
    assert model.path == export and model.config["train"]["max_steps"] == 4
    assert not model.generator.training and next(model.generator.parameters()).device.type == "cpu"
    assert same_weights(model.generator, runs.load_tensors(export / "generator.safetensors"))
    both = load_model(export, task="cgan", device="cpu", with_discriminator=True)  # a task alias of digits
    assert list(both.nets) == ["generator", "discriminator"] and both.discriminator is both.nets["discriminator"]
    assert same_weights(both.discriminator, runs.load_tensors(export / "discriminator.safetensors"))


def test_a_task_that_does_not_match_is_refused(tiny_cgan_run: Path) -> None:
    with pytest.raises(CheckpointError, match=rf"^{tiny_cgan_run / 'export'}: this model is for task 'digits', not 'srgan'$"):
        load_model(tiny_cgan_run, task="srgan", device="cpu")
    with pytest.raises(CheckpointError, match=r"^unknown task 'pix3pix'; expected one of acgan, cgan, cyclegan, dcgan, "):
        load_model(tiny_cgan_run, task="pix3pix", device="cpu")
    with pytest.raises(CheckpointError, match=r"^--checkpoint is required for task 'cgan' \(only sr ships a model\)$"):
        load_model(None, task="cgan")
    assert {TASK_ALIASES[t] for t in ("gan", "dcgan", "cgan", "acgan")} == {"digits"}


def test_a_four_network_export_gives_its_declared_slots(tmp_path: Path) -> None:
    g = {"type": "resnet_6blocks", "in_channels": 1, "out_channels": 1, "base_channels": 4}
    d = {"type": "patchgan", "in_channels": 1, "n_layers": 1, "base_channels": 4}
    config = {"recipe": {"type": "cyclegan"}, "losses": {},
              "models": {"generator_ab": g, "generator_ba": g, "discriminator_a": d, "discriminator_b": d}}
    torch.manual_seed(0)
    nets = build_models(config["recipe"], config["models"])
    info = runs.export_info("cyclegan", config, list(nets), {}, 3, [])
    runs.write_export(tmp_path / "export", {s: n.state_dict() for s, n in nets.items()}, info)
    model = load_model(tmp_path, task="cyclegan", device="cpu")
    assert list(model.nets) == ["generator_ab", "generator_ba"]
    full = load_model(tmp_path, device="cpu", with_discriminator=True)
    assert list(full.nets) == ["generator_ab", "generator_ba", "discriminator_a", "discriminator_b"]
    assert all(same_weights(full.nets[s], nets[s].state_dict()) for s in nets)
    assert full.discriminator is None  # no slot of that name: the two-network shortcut says so


def test_loaded_model_helpers(tiny_cgan_run: Path) -> None:
    from i2i.apps.common import eval_recipe  # i2i-eval's recipe; running a model needs none

    model = load_model(tiny_cgan_run, device="cpu")
    recipe = eval_recipe(model)
    assert type(recipe).__name__ == "CGANRecipe" and recipe.z_dim == model.generator.z_dim  # setup() ran on the nets
    replacement = torch.nn.Identity()
    model.generator = replacement
    assert model.nets["generator"] is replacement and model.to("cpu") is model


def test_the_shipped_super_resolution_model(tmp_path: Path) -> None:
    if not (SHIPPED["sr"] / "config.json").is_file():
        pytest.skip("the shipped weights are not in this checkout")
    model = load_model(None, task="sr", device="cpu")
    assert model.path == SHIPPED["sr"] and model.task == "sr" and type(model.generator).__name__ == "SRResNet"
    assert model.meta["scale"] == 4


def test_shipped_model_names() -> None:
    from i2i.errors import CheckpointError
    from i2i.inference import DEFAULT_SHIPPED, SHIPPED_MODELS, shipped_model

    assert shipped_model("srresnet_x4_small") == SHIPPED_MODELS["srresnet_x4_small"]
    assert SHIPPED["sr"] == SHIPPED_MODELS[DEFAULT_SHIPPED["sr"]]
    with pytest.raises(CheckpointError, match=r"^--model: no shipped model 'x'; expected one of srresnet_x4, srresnet_x4_small, realesrnet_x4$"):
        shipped_model("x")
