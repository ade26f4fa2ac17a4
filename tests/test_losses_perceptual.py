import copy
import urllib.error

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torchvision.models import vgg as tv_vgg

import i2i.losses.perceptual as pl
from i2i.errors import CheckpointError, ConfigError
from i2i.registry import LOSSES

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _torchvision_features(cfg: str) -> torch.nn.Sequential:
    """torchvision's own VGG ``features`` (what vgg19().features is), with its He init."""
    torch.manual_seed(0)
    feats = tv_vgg.make_layers(tv_vgg.cfgs[cfg])
    for m in feats.modules():
        if isinstance(m, torch.nn.Conv2d):  # torchvision's VGG init keeps deep activations O(1)
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.normal_(m.bias, 0, 0.01)
    return feats.eval()


@pytest.fixture(scope="module")
def tv19():
    feats = _torchvision_features("E")
    # a torchvision-layout full-VGG state dict; classifier keys present (tiny, must be ignored)
    state = {f"features.{k}": v.clone() for k, v in feats.state_dict().items()}
    state.update({f"classifier.{i}.{p}": torch.zeros(2) for i in (0, 3, 6) for p in ("weight", "bias")})
    return feats, state


@pytest.fixture(scope="module")
def files(tv19, tmp_path_factory):
    _, state = tv19
    d = tmp_path_factory.mktemp("vgg")
    torch.save(state, d / "vgg19.pth")
    save_file(state, str(d / "vgg19.safetensors"))
    torch.save({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}, d / "bare.pt")
    return d


def _reference(feats, idx, pred, target, scale, crit, lo=0.0, hi=1.0):
    """The loss by hand: torchvision's features on ImageNet-normalised [0,1] inputs."""
    def run(x):
        h = ((x - lo) / (hi - lo) - MEAN) / STD
        for i, layer in enumerate(feats):
            h = layer(h)
            if i == idx:
                return h.clone()  # torchvision's ReLUs are in-place

    a, b = run(pred), run(target)
    if crit == "mse":
        return (scale**2) * ((a - b) ** 2).mean()  # MSE(s·a, s·b) = s²·MSE(a, b)
    return scale * (a - b).abs().mean()


@pytest.mark.parametrize("fname", ["vgg19.pth", "vgg19.safetensors"])
def test_vgg54_matches_hand_computation(tv19, files, fname):
    feats, _ = tv19
    loss = LOSSES.build({"type": "perceptual", "weights": str(files / fname), "feature_scale": 1 / 12.75,
                         "weight": 0.006})
    torch.manual_seed(1)
    pred, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    ref = _reference(feats, 35, pred, target, 1 / 12.75, "mse")  # relu5_4 = features[35]
    assert ref > 0
    assert loss(pred, target).item() == pytest.approx(0.006 * ref.item(), rel=1e-5)
    assert len(loss.vgg) == 36  # truncated right after relu5_4


def test_multi_layer_l1_and_input_range_bare_keys(tv19, files):
    feats, _ = tv19
    loss = pl.PerceptualLoss(layers={"relu2_2": 0.5, "conv3_4": 2.0}, criterion="l1", feature_scale=0.5,
                             input_range=(-1.0, 1.0), weights=str(files / "bare.pt"), weight=3.0)
    torch.manual_seed(2)
    pred, target = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    ref = 0.5 * _reference(feats, 8, pred, target, 0.5, "l1", -1, 1) \
        + 2.0 * _reference(feats, 16, pred, target, 0.5, "l1", -1, 1)  # conv3_4 is pre-activation
    assert loss(pred, target).item() == pytest.approx(3.0 * ref.item(), rel=1e-5)
    per_layer = loss.layer_losses(pred, target)
    assert set(per_layer) == {"relu2_2", "conv3_4"}
    assert (per_layer["conv3_4"] > 0) and len(loss.vgg) == 17


@pytest.mark.parametrize("arch, cfg", [("vgg19", "E"), ("vgg16", "D")])
def test_layer_names_match_torchvision_layout(arch, cfg):
    tv = tv_vgg.make_layers(tv_vgg.cfgs[cfg])
    names = pl.vgg_layer_indices(arch)
    for name, idx in names.items():
        kind = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}[name[:4]]
        assert isinstance(tv[idx], kind), name
        block = int(name[4]) if name.startswith("pool") else int(name[4:].split("_")[0])
        pools_before = sum(isinstance(m, torch.nn.MaxPool2d) for m in tv[:idx])
        assert pools_before == block - 1, name
        if not name.startswith("pool"):
            j = int(name.split("_")[1])
            start = max([i + 1 for i in range(idx) if isinstance(tv[i], torch.nn.MaxPool2d)], default=0)
            assert sum(isinstance(m, torch.nn.Conv2d) for m in tv[start: idx + 1]) == j, name
    assert (names["relu2_2"], names["relu5_4" if arch == "vgg19" else "relu5_3"]) == \
        ((8, 35) if arch == "vgg19" else (8, 29))
    assert len(pl.build_vgg_features(arch, 10**3)) == len(tv)


def test_vgg16_loads_from_vgg16_file_and_rejects_vgg19_file(tmp_path, files):
    feats = _torchvision_features("D")
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, tmp_path / "vgg16.pth")
    loss = pl.PerceptualLoss(arch="vgg16", layers={"relu4_3": 1.0}, weights=str(tmp_path / "vgg16.pth"))
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert loss(x, y).item() == pytest.approx(_reference(feats, 22, x, y, 1.0, "mse").item(), rel=1e-5)
    # VGG19's features[17] is a ReLU where VGG16 has conv4_1: the error names file and key
    with pytest.raises(CheckpointError, match=r"vgg19\.pth: missing key 'features\.17\.weight' \(vgg16 conv4_1\)"):
        pl.PerceptualLoss(arch="vgg16", layers={"relu5_3": 1.0}, weights=str(files / "vgg19.pth"))


def test_gradients_reach_input_not_vgg(files):
    loss = pl.PerceptualLoss(layers={"relu3_1": 1.0}, weights=str(files / "vgg19.pth"))
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(pred, torch.rand(1, 3, 16, 16)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in loss.vgg.parameters())


def test_not_in_state_dict_or_parameters_but_moves_and_stays_eval(files):
    loss = pl.PerceptualLoss(layers={"relu1_2": 1.0}, weights=str(files / "vgg19.pth"))
    assert loss.state_dict() == {} and list(loss.parameters()) == []
    loss.train()
    assert loss.training and not loss.vgg.training
    before = loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    loss.to(torch.float64)  # the same _apply path as .to(device) / .cuda()
    assert all(p.dtype == torch.float64 for p in loss.vgg.parameters()) and loss.mean.dtype == torch.float64
    assert torch.isfinite(before) and loss(torch.rand(1, 3, 8, 8).double(), torch.rand(1, 3, 8, 8).double()) > 0
    clone = copy.deepcopy(loss)  # EMA/trainer code may deep-copy modules
    assert clone.vgg is not loss.vgg


def test_offline_without_cache_is_one_actionable_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls = []

    def offline(url, dst, *a, **k):  # no network access in tests: behave like a machine without one
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(CheckpointError) as info:
        pl.PerceptualLoss(weights="IMAGENET1K_V1")
    msg = str(info.value)
    assert calls == ["https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"]
    assert "\n" not in msg
    assert "put vgg19-dcbb9e9d.pth" in msg and str(tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in msg
    assert "weights:" in msg and "name resolution" in msg


def test_enum_loads_from_hub_cache_without_network(tv19, tmp_path, monkeypatch):
    feats, state = tv19
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(state, ckpt / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("network used"))
    loss = pl.PerceptualLoss(weights="DEFAULT", layers={"relu2_2": 1.0})
    x, y = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert loss(x, y).item() == pytest.approx(_reference(feats, 8, x, y, 1.0, "mse").item(), rel=1e-5)


def test_vgg16_features_enum_uses_its_own_normalisation(tmp_path, monkeypatch):
    feats = _torchvision_features("D")
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()},
               ckpt / "vgg16_features-amdegroot-88682ab5.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    loss = pl.PerceptualLoss(arch="vgg16", weights="IMAGENET1K_FEATURES", layers={"relu1_1": 1.0})
    meta = torchvision.models.VGG16_Weights.IMAGENET1K_FEATURES.transforms.keywords
    assert torch.allclose(loss.std.flatten(), torch.tensor(meta["std"]))
    assert torch.allclose(loss.mean.flatten(), torch.tensor(meta["mean"]))


def test_bad_files_and_config(tmp_path, tv19):
    _, state = tv19
    partial = {k: v for k, v in state.items() if k != "features.34.weight"}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial\.pth: missing key 'features\.34\.weight' \(vgg19 conv5_4\)"):
        pl.PerceptualLoss(weights=str(tmp_path / "partial.pth"))
    pl.PerceptualLoss(weights=str(tmp_path / "partial.pth"), layers={"relu5_3": 1.0})  # not needed: fine
    with pytest.raises(CheckpointError, match="not found: .*missing.pth"):
        pl.PerceptualLoss(weights=str(tmp_path / "missing.pth"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"junk\.safetensors"):
        pl.PerceptualLoss(weights=str(tmp_path / "junk.safetensors"))
    with pytest.raises(ConfigError, match="^weights: expected a torchvision vgg19 weights name"):
        pl.PerceptualLoss(weights="IMAGENET_V2")
    with pytest.raises(ConfigError, match="^layers: 'relu5_4' is not a vgg16 layer"):
        pl.PerceptualLoss(arch="vgg16", weights=None)
    with pytest.raises(ConfigError, match="input_range"):
        pl.PerceptualLoss(input_range=(1.0, 0.0), weights=None)
    with pytest.raises(ConfigError, match=r"losses\.content\.criterion"):
        LOSSES.build({"type": "perceptual", "criterion": "l2", "weights": None}, key="losses.content")
    loss = pl.PerceptualLoss(weights=None, layers={"relu1_1": 1.0})
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_realesrgan_preset_is_five_pre_activation_layers(tv19, files):
    # Real-ESRGAN: Σ_l w_l · mean|φ_l(x̂) − φ_l(x)| on conv1_2, conv2_2, conv3_4, conv4_4, conv5_4
    # (torchvision indices 2, 7, 16, 25, 34: each conv's output before its ReLU), w = 0.1, 0.1, 1, 1, 1
    feats, _ = tv19
    loss = LOSSES.build({"type": "perceptual", "layers": "realesrgan", "criterion": "l1",
                         "weights": str(files / "vgg19.safetensors")})
    assert loss.layers == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    assert len(loss.vgg) == 35  # truncated right after conv5_4
    torch.manual_seed(3)
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    ref = sum(w * _reference(feats, i, pred, target, 1.0, "l1")
              for i, w in ((2, 0.1), (7, 0.1), (16, 1.0), (25, 1.0), (34, 1.0)))
    assert loss(pred, target).item() == pytest.approx(ref.item(), rel=1e-5)
    # pre-activation: the stored conv features take negative values (a ReLU output never would)
    assert all(f.min() < 0 for f in loss.features(pred).values())
    with pytest.raises(ConfigError, match="^layers: unknown preset 'esrgan'"):
        pl.PerceptualLoss(layers="esrgan", weights=None)
