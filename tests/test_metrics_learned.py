"""LPIPS/DISTS (i2i.metrics.learned): never a download; one line naming the missing backbone file."""
from __future__ import annotations

import functools
import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision

from i2i.errors import MetricError
from i2i.metrics import learned as ml


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, and no way to download anything.

    Through ``$TORCH_HOME`` (restored by monkeypatch), not ``torch.hub.set_dir``: set_dir leaves a
    process-wide override behind that ignores every later test's ``TORCH_HOME``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert torch.hub.get_dir() == str(tmp_path / "hub")

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub" / "checkpoints"


def test_backbones_are_torchvisions_files() -> None:
    for name, b in ml.BACKBONES.items():
        enum_name, member = b.weights.split(".")
        weights = getattr(torchvision.models, enum_name)[member]
        assert weights.url == b.url and Path(weights.url).name == b.file, name
        assert getattr(torchvision.models, enum_name).DEFAULT is weights  # what torchmetrics asks for


def test_missing_backbones_give_one_line_each(hub: Path) -> None:
    lm = ml.LearnedMetrics()
    assert lm.names == []
    assert len(lm.notes) == 2
    for line, name in zip(lm.notes, ("lpips", "dists")):
        assert "\n" not in line and line.startswith(f"{name.upper()} skipped: ")
        assert str(hub / ml.BACKBONES[name].file) in line
        assert f"torchvision.models.{ml.BACKBONES[name].builder}(weights='DEFAULT')" in line
    assert lm(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)) == {}


@functools.cache
def _fake_state_dict(builder: str) -> dict[str, torch.Tensor]:
    """A seeded stand-in for torchvision's ImageNet weights: random conv features, zero classifier
    (the metrics use only the features); built from the meta-device model's shapes, so no 500 MB init."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in getattr(torchvision.models, builder)(weights=None).state_dict().items()}
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(s, generator=g) * 0.05 if k.startswith("features") else torch.zeros(s)) for k, s in shapes.items()}


def test_present_backbones_are_used_without_download(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import WeightsEnum

    unsafe = WeightsEnum.get_state_dict
    hub.mkdir(parents=True)
    for b in ml.BACKBONES.values():
        (hub / b.file).write_bytes(b"")  # present (the 0.2 / 0.5 GB contents are stood in for below)
    by_file = {b.file: b.builder for b in ml.BACKBONES.values()}
    loaded: list[str] = []

    def fake_load(path: Path) -> dict[str, torch.Tensor]:  # what load_backbone would read from the file
        loaded.append(path.name)
        return _fake_state_dict(by_file[path.name])

    monkeypatch.setattr(ml, "load_backbone", fake_load)
    # the ImageNet classifiers (120 M parameters, unused by the metrics) need no random init here: it is overwritten
    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", lambda self: None)

    lm = ml.LearnedMetrics()
    assert lm.names == ["lpips", "dists"] and lm.notes == []
    # torchvision's loader went through load_backbone (weights_only), once per network, and is restored
    assert loaded == ["alexnet-owt-7be5be79.pth", "vgg16-397923af.pth"] and WeightsEnum.get_state_dict is unsafe
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 48, 64, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    same = lm(x, x)
    assert same["lpips"] == pytest.approx(0.0, abs=1e-7) and same["dists"] == pytest.approx(0.0, abs=1e-5)
    got = lm(x, y)
    assert got["lpips"] > 1e-4 and got["dists"] > 1e-4
    # the same numbers as torchmetrics' own functions on the 8-bit images in [0, 1]
    from torchmetrics.functional.image.dists import deep_image_structure_and_texture_similarity
    from torchmetrics.functional.image.lpips import learned_perceptual_image_patch_similarity

    a, b = torch.round(x * 255) / 255, torch.round(y * 255) / 255
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *a, **k: _fake_state_dict(by_file[Path(self.url).name]))
    assert got["lpips"] == pytest.approx(learned_perceptual_image_patch_similarity(a, b, "alex", normalize=True).item(),
                                         rel=1e-5)
    assert got["dists"] == pytest.approx(deep_image_structure_and_texture_similarity(a, b).item(), rel=1e-5)


def test_bad_pairs_are_refused(hub: Path) -> None:
    with pytest.raises(ValueError, match="unknown learned metric"):
        ml.LearnedMetrics(("fid",))
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        ml.LearnedMetrics()(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))


def test_load_backbone_runs_no_code(tmp_path: Path) -> None:
    """Only tensors come out of a cached file: a pickle that would run code is refused in one line."""
    good = tmp_path / "good.pth"
    torch.save({"features.0.weight": torch.ones(2, 3)}, good)
    assert torch.equal(ml.load_backbone(good)["features.0.weight"], torch.ones(2, 3))

    class Payload:
        def __reduce__(self):  # unpickling would call print(...)
            return (print, ("code ran",))

    evil = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(MetricError, match="weights_only=True"):
        ml.load_backbone(evil)
    with pytest.raises(MetricError, match="missing"):
        ml.load_backbone(tmp_path / "absent.pth")
