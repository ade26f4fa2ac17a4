"""The model card (i2i.card) and the reader seam (i2i.readers): every loaded model has a card,
the same whichever way the model was saved, and the running wing reads it."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from i2i import readers, runs
from i2i.card import ModelCard, Provenance, card_from_dict, derive_card, receptive_radius
from i2i.config import load_config
from i2i.engine.build import build_run
from i2i.errors import CheckpointError
from i2i.inference import SHIPPED_MODELS, load_model

ROOT = Path(__file__).resolve().parent.parent
from conftest import TINY_PER_TASK as TINY  # noqa: E402


def _saved_three_ways(task: str, folder: Path) -> tuple[Path, Path, Path]:
    """The same networks as an export with a card (what the trainer writes now), an export
    without one (written before cards), and a checkpoint folder (no meta at all)."""
    torch.manual_seed(0)
    cfg = load_config(ROOT / "tasks" / f"{task}.yaml", ["logging.tracker=none"] + TINY[task])
    built = build_run(cfg, datasets=False, init=False)
    c = cfg.to_dict()
    meta = built.recipe.export_meta()
    weights = {s: m.state_dict() for s, m in built.models.items()}
    old = runs.export_info(built.recipe.task, c, list(built.models), meta, 3, [])
    card = derive_card(built.recipe.task, c["recipe"], c["models"], meta, c, dict(built.models),
                       Provenance(format="i2i-export", step=3))
    runs.write_export(folder / "new", weights, {**old, "card": json.loads(json.dumps(card.to_dict()))})
    runs.write_export(folder / "old", weights, old)
    step = folder / "run" / "checkpoints" / "step_00000003"
    step.mkdir(parents=True)
    runs.save_tensors(runs.checkpoint_tensors(built.models, {}), step / "models.safetensors")
    (step / "config.yaml").write_text(yaml.safe_dump(c))
    return folder / "new", folder / "old", step


def _facts(card: ModelCard) -> dict:
    """Everything but where the file came from and the meta's free notes (a checkpoint has no meta)."""
    d = dataclasses.asdict(card)
    d.pop("provenance")
    d.pop("notes")
    return d


@pytest.mark.parametrize("task", sorted(TINY))
def test_the_card_is_the_same_however_the_model_was_saved(task: str, tmp_path: Path) -> None:
    new, old, ckpt = _saved_three_ways(task, tmp_path)
    cards = [load_model(p, device="cpu", with_discriminator=True).card for p in (new, old, ckpt)]
    assert _facts(cards[0]) == _facts(cards[1]) == _facts(cards[2])
    assert [c.provenance.format for c in cards] == ["i2i-export", "i2i-export", "i2i-checkpoint"]
    for c, p in zip(cards, (new, old, ckpt)):
        assert c.provenance.file == str(p)
        assert c.provenance.sha256 == {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                                       for f in sorted(p.glob("*.safetensors"))}
    assert cards[0].provenance.step == cards[1].provenance.step == 3
    card = cards[0]
    assert card.inference_slots == (("generator_ab", "generator_ba") if task.startswith("cyclegan") else ("generator",))
    expected = {"gan_mnist": "digits", "cgan_mnist": "digits", "srresnet": "sr", "pix2pix_sketch2photo": "sketch2photo",
                "segmentation_baseline": "seg", "cyclegan_fashion": "cyclegan"}[task]
    assert card.task == expected


def test_each_tasks_card_says_what_its_pipeline_needs(tmp_path: Path) -> None:
    cards = {t: load_model(_saved_three_ways(t, tmp_path / t)[0], device="cpu").card for t in TINY}
    sr = cards["srresnet"]  # SRResNet x4, 1 block: 4 + 2·1 + 1 + 1 + 0.5 + 1 = 9.5 LR pixels
    assert (sr.scale, sr.in_channels, sr.out_channels, sr.value_range, sr.tiling, sr.receptive_radius) == \
        (4, 3, 3, (0.0, 1.0), "exact", 9.5)
    p2p = cards["pix2pix_sketch2photo"]
    assert (p2p.in_channels, p2p.out_channels, p2p.multiple_of, p2p.value_range, p2p.tiling) == (1, 3, 16, (-1.0, 1.0), "none")
    assert p2p.sketch is not None and p2p.sketch.data_type == "photo_sketch" and p2p.sketch.kind == "xdog"
    seg = cards["segmentation_baseline"]
    assert seg.classes is not None and len(seg.classes.names) == 7 == len(seg.classes.palette)
    assert seg.classes.palette[1] == (128, 0, 0) and seg.classes.ignore_index == 255  # VOC colour map
    assert cards["gan_mnist"].latent is not None and not cards["gan_mnist"].latent.conditional
    lat = cards["cgan_mnist"].latent
    assert lat is not None and lat.conditional and lat.d_conditional and lat.num_classes == 10 and lat.z_dim > 0
    cg = cards["cyclegan_fashion"]
    assert cg.directions is not None and cg.directions.slots == {"AtoB": "generator_ab", "BtoA": "generator_ba"}
    assert cg.multiple_of == 4 and cg.directions.channels == {"AtoB": cg.in_channels, "BtoA": cg.out_channels}


def test_the_card_round_trips_through_json() -> None:
    model = load_model(SHIPPED_MODELS["srresnet_x4_small"], device="cpu")
    d = json.loads(json.dumps(model.card.to_dict()))
    assert card_from_dict(d) == model.card
    with pytest.raises(CheckpointError, match=r"^x/config.json: card: not a valid model card \(ValueError: expected a card"):
        card_from_dict({**d, "version": 99}, "x/config.json: card")
    with pytest.raises(CheckpointError, match="not a valid model card"):
        card_from_dict({**d, "no_such_field": 1})


@pytest.mark.parametrize("name,blocks", [("srresnet_x4", 16), ("srresnet_x4_small", 8)])
def test_the_shipped_weights_card(name: str, blocks: int) -> None:
    folder = SHIPPED_MODELS[name]
    model = load_model(folder, device="cpu")
    card = model.card
    assert (card.task, card.scale, card.tiling, card.receptive_radius) == ("sr", 4, "exact", 2 * blocks + 7.5)
    assert card.receptive_radius == receptive_radius(model.generator)  # computed for i2i's own networks, as before
    digest = hashlib.sha256((folder / "generator.safetensors").read_bytes()).hexdigest()
    assert card.provenance.sha256 == {"generator.safetensors": digest}
    assert card.provenance.architecture == {"generator": "srresnet"} and card.provenance.recipe == "sr"


def test_the_sr_pipeline_takes_its_overlap_and_scale_from_the_card() -> None:
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    model = load_model(SHIPPED_MODELS["srresnet_x4_small"], device="cpu")
    assert SuperResolutionPipeline(model).overlap == 26  # ceil(23.5) + 2
    model.stored_card = dataclasses.replace(model.card, receptive_radius=100.0)
    assert SuperResolutionPipeline(model).overlap == 102
    model.stored_card = dataclasses.replace(model.card, tiling="none")  # no exact radius: the generous default
    assert SuperResolutionPipeline(model).overlap == 48


def test_a_pretrained_folder_keeps_the_card(tmp_path: Path) -> None:
    from i2i.hub import save_pretrained

    new, old, _ = _saved_three_ways("srresnet", tmp_path)
    out = save_pretrained(new, tmp_path / "pretrained")
    assert "card" in json.loads((out / "config.json").read_text())
    card = load_model(out, device="cpu").card
    assert card.provenance.format == "i2i-pretrained" and set(card.provenance.sha256) == {"generator/model.safetensors"}
    assert _facts(card) == _facts(load_model(new, device="cpu").card)
    assert "card" not in json.loads((save_pretrained(old, tmp_path / "p_old") / "config.json").read_text())


def test_a_damaged_card_is_one_line_naming_the_file(tmp_path: Path) -> None:
    new, _, _ = _saved_three_ways("srresnet", tmp_path)
    info = json.loads((new / "config.json").read_text())
    info["card"]["latent"] = {"z_dim": "many"}
    (new / "config.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=rf"^{new / 'config.json'}: card: not a valid model card"):
        load_model(new, device="cpu")


# ----------------------------------------------------------------------------- the reader seam
class _FakeFile:
    """A reader of ``*.fake`` files: a 1×1 convolution, its card written by hand."""

    name = "fake"

    def accepts(self, path: Path) -> bool:
        return path.suffix == ".fake"

    def read(self, path: str | Path, device: torch.device, with_discriminator: bool) -> readers.LoadedModel:
        net = torch.nn.Conv2d(3, 3, 1).to(device).eval()
        card = ModelCard(task="sr", slots={"generator": "generator"}, scale=1, in_channels=3, out_channels=3,
                         tiling="exact", receptive_radius=0.0, provenance=Provenance(format="fake", file=str(path)))
        return readers.LoadedModel(nets={"generator": net}, task="sr", path=Path(path), stored_card=card)


def test_a_registered_reader_is_tried_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "READERS", list(readers.READERS))
    readers.register_reader(_FakeFile())
    with pytest.raises(KeyError, match="already registered"):
        readers.register_reader(_FakeFile())
    f = tmp_path / "m.fake"
    f.write_bytes(b"")
    model = load_model(f, task="srgan", device="cpu")
    assert model.card.provenance.format == "fake"
    from i2i.pipelines import pipeline_for

    img = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    assert pipeline_for(model)(img).shape == (5, 6, 3)  # the SR pipeline, scale 1 from the card
    with pytest.raises(CheckpointError, match="this model is for task 'sr', not 'seg'"):
        load_model(f, task="seg", device="cpu")


def test_fast_stays_within_the_cards_dtypes() -> None:
    from i2i.perf import FP16_SAFE_PEAK
    from i2i.readers import fast_precision

    net = torch.nn.Conv2d(3, 3, 1)
    probe = (torch.rand(1, 3, 8, 8),)
    assert fast_precision(("float32", "float16", "bfloat16"), "cuda", net, probe) == ("auto", probe)  # as before cards
    assert fast_precision(("float32", "bfloat16"), "cuda", net, probe) == ("auto", None)  # no fp16: no probe, so bf16
    assert fast_precision(("float32", "float16"), "cpu", net, probe) == ("fp32", None)  # fp16 on a CPU: never
    assert fast_precision(("float32", "float16"), "cuda", net, probe) == ("fp16", None)  # small activations: fp16 safe
    with torch.no_grad():
        net.weight.fill_(FP16_SAFE_PEAK)
    assert fast_precision(("float32", "float16"), "cuda", net, probe) == ("fp32", None)  # would overflow: fp32
    assert fast_precision(("float32",), "cuda", net, probe) == ("fp32", None)
    model = load_model(SHIPPED_MODELS["srresnet_x4_small"], device="cpu")
    model.stored_card = dataclasses.replace(model.card, dtypes=("float32",))
    assert model.fast().generator.precision == "fp32"
