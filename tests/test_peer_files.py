"""Fine-tuning from a foreign weights file (``train.init.<slot>: FILE``) and writing a network back in
its peer's layout (``i2i-export --format peer``), checked against the peers' own loaders: spandrel
for Real-ESRGAN's families, the reference of junyanz's generator structure in tests/test_junyanz.py."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("spandrel")

from test_junyanz import RefResnet, RefUnet, _randomise  # noqa: E402

from i2i.engine.build import load_init  # noqa: E402
from i2i.errors import CheckpointError, ConfigError  # noqa: E402
from i2i.inference import load_model  # noqa: E402
from i2i.nn.resnet_generator import ResnetGenerator  # noqa: E402
from i2i.nn.rrdbnet import RRDBNet  # noqa: E402
from i2i.nn.srvgg import SRVGGNetCompact  # noqa: E402
from i2i.nn.unet import UNet  # noqa: E402
from i2i.runs import write_export  # noqa: E402


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_init_takes_a_real_esrgan_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    peer = SRVGGNetCompact(scale=2, width=8, num_conv=2)
    f = tmp_path / "realesr-tiny-x2.pth"
    torch.save({"params": peer.state_dict()}, f)  # Real-ESRGAN's release layout
    assert load_model(f, device="cpu").card.provenance.architecture == {"generator": "Compact"}  # spandrel agrees
    fresh = SRVGGNetCompact(scale=2, width=8, num_conv=2)
    load_init({"generator": fresh}, {"generator": str(f)})
    assert _same(fresh, peer)
    g = tmp_path / "RealESRGAN_tiny_x4plus.pth"
    rrdb = RRDBNet(scale=4, width=8, num_blocks=1, growth=32)
    torch.save({"params_ema": rrdb.state_dict(), "params": {}}, g)
    assert load_model(g, device="cpu").card.provenance.architecture == {"generator": "ESRGAN"}
    other = RRDBNet(scale=4, width=8, num_blocks=1, growth=32)
    load_init({"generator": other}, {"generator": str(g)})
    assert _same(other, rrdb)
    with pytest.raises(CheckpointError) as e:  # the configured network differs: one line, missing and unexpected
        load_init({"generator": SRVGGNetCompact(scale=2, width=8, num_conv=3)}, {"generator": str(f)})
    msg = str(e.value)
    assert msg.startswith(f"train.init.generator: {f}: weights do not fit SRVGGNetCompact: missing body.") and "\n" not in msg


@pytest.mark.filterwarnings("ignore:torch.meshgrid")
def test_train_init_takes_the_original_esrgan_layouts(tmp_path: Path) -> None:
    """``train.init.generator: RRDB_ESRGAN_x4.pth`` in the original ESRGAN repository's layouts (the
    ``nn.Sequential`` one, ``model.0.weight``, ``model.1.sub.N.RDB1.conv1.0.weight``, … — spandrel's
    ESRGAN class keeps it — and its later ``RRDB_trunk`` one) starts i2i's ``rrdbnet`` with the
    peer network's output; a mismatch is one line of missing and unexpected keys."""
    from spandrel.architectures.ESRGAN.__arch.RRDB import RRDBNet as PeerRRDB

    torch.manual_seed(12)
    peer = PeerRRDB(num_filters=8, num_blocks=2, scale=4).eval()
    with torch.no_grad():
        for p in peer.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    old = peer.state_dict()
    assert "model.1.sub.0.RDB1.conv1.0.weight" in old and "model.10.weight" in old  # the original release's keys
    f = tmp_path / "RRDB_ESRGAN_x4.pth"
    torch.save(old, f)
    net = RRDBNet(scale=4, width=8, num_blocks=2, growth=32).eval()
    load_init({"generator": net}, {"generator": str(f)})
    x = torch.rand(1, 3, 11, 9)
    with torch.no_grad():
        assert (net(x) - peer(x)).abs().max().item() <= 1e-5
    trunk = {"body.": "RRDB_trunk.", "conv_body.": "trunk_conv.", "conv_up1.": "upconv1.", "conv_up2.": "upconv2.",
             "conv_hr.": "HRconv."}
    later = {}
    for k, v in net.state_dict().items():  # ESRGAN's RRDBNet_arch.py names
        for new, was in trunk.items():
            if k.startswith(new):
                k = was + k[len(new):]
                break
        later[k.replace(".rdb", ".RDB")] = v
    g = tmp_path / "RRDB_ESRGAN_x4_trunk.pth"
    torch.save(later, g)
    again = RRDBNet(scale=4, width=8, num_blocks=2, growth=32).eval()
    load_init({"generator": again}, {"generator": str(g)})
    assert _same(again, net)
    with pytest.raises(CheckpointError) as e:  # the configured network has 1 block, the file 2
        load_init({"generator": RRDBNet(scale=4, width=8, num_blocks=1, growth=32)}, {"generator": str(f)})
    msg = str(e.value)
    assert msg.startswith(f"train.init.generator: {f}: weights do not fit RRDBNet: unexpected body.1.rdb1.conv1.bias")
    assert "\n" not in msg
    h = tmp_path / "RRDB_ESRGAN_x2.pth"  # one upsampling (an ×2 ESRGAN): i2i's rrdbnet has no such layout
    torch.save(PeerRRDB(num_filters=8, num_blocks=2, scale=2).state_dict(), h)
    with pytest.raises(CheckpointError, match=r"weights do not fit RRDBNet: missing conv_up2.bias, conv_up2.weight$"):
        load_init({"generator": RRDBNet(scale=4, width=8, num_blocks=2, growth=32)}, {"generator": str(h)})


def test_train_init_takes_a_junyanz_generator(tmp_path: Path) -> None:
    ref = _randomise(RefUnet(3, 3, 7, 4, "instance"), seed=1)
    f = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), f)
    net = UNet(3, 3, num_downs=7, base_channels=4, max_channels=32, norm="instance").eval()
    load_init({"generator": net}, {"generator": str(f)})
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert (net(x) - ref(x)).abs().max().item() <= 1e-5
    with pytest.raises(CheckpointError, match=r"weights do not fit UNet: .*shapes"):
        load_init({"generator": UNet(3, 3, num_downs=7, base_channels=8, norm="instance")}, {"generator": str(f)})


def _export(root: Path, spec: dict, net: torch.nn.Module, task: str = "sr", recipe: str = "sr") -> Path:
    out = root / "export"
    info = {"format": "i2i-export", "version": 1, "task": task, "recipe": {"type": recipe, "scale": spec.get("scale", 1)},
            "models": {"generator": spec}, "meta": {"scale": spec.get("scale", 1)}, "config": {}}
    write_export(out, {"generator": net.state_dict()}, info)
    return out


@pytest.mark.parametrize("kind", ["srvgg_compact", "rrdbnet"])
def test_export_peer_is_loaded_by_spandrel_with_the_same_output(tmp_path: Path, kind: str) -> None:
    from spandrel import ModelLoader

    from i2i.cli import run
    from i2i.commands import export_main

    torch.manual_seed(2)
    if kind == "rrdbnet":
        spec = {"type": "rrdbnet", "scale": 4, "width": 8, "num_blocks": 1, "growth": 32}
        net = RRDBNet(scale=4, width=8, num_blocks=1, growth=32)
    else:
        spec = {"type": "srvgg_compact", "scale": 2, "width": 8, "num_conv": 2}
        net = SRVGGNetCompact(scale=2, width=8, num_conv=2)
    src = _export(tmp_path, spec, net)
    out = tmp_path / f"{kind}.pth"
    assert run(export_main, [str(src), "--format", "peer", "-o", str(out)]) == 0
    assert list(torch.load(out, weights_only=True)) == ["params_ema"]
    peer = ModelLoader().load_from_file(out)  # the peer ecosystem's own loader
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert (peer(x) - net.eval()(x).clamp(0, 1)).abs().max().item() <= 1e-5  # spandrel's call clamps
    assert run(export_main, [str(src), "--format", "peer", "-o", str(out)]) == 2  # never replaced


@pytest.mark.parametrize("kind", ["msrresnet", "edsr"])
def test_export_peer_of_basicsr_networks_reads_back(tmp_path: Path, kind: str) -> None:
    """i2i's msrresnet / edsr written back as BasicSR's release file (``params_ema``, BasicSR's keys)
    and read by i2i's BasicSR reader (spandrel has none for them) with the same output."""
    from i2i.commands import export_peer
    from i2i.nn.msrresnet import EDSR, MSRResNet

    torch.manual_seed(13)
    net = (MSRResNet if kind == "msrresnet" else EDSR)(scale=2, width=8, num_blocks=1).eval()
    src = _export(tmp_path, {"type": kind, "scale": 2, "width": 8, "num_blocks": 1}, net)
    out = export_peer(src, tmp_path / "net_g_latest.pth")
    assert list(torch.load(out, weights_only=True)) == ["params_ema"]
    model = load_model(out, device="cpu")
    assert model.card.provenance.architecture == {"generator": "MSRResNet" if kind == "msrresnet" else "EDSR"}
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        assert (model.generator(x) - net(x)).abs().max().item() <= 1e-5


def test_export_peer_of_junyanz_generators_loads_in_their_layout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from i2i.cli import run
    from i2i.commands import export_main, export_peer

    torch.manual_seed(3)
    net = _randomise(UNet(3, 3, num_downs=7, base_channels=4, max_channels=32, norm="instance"), seed=3)
    src = _export(tmp_path / "u", {"type": "unet", "num_downs": 7, "base_channels": 4, "max_channels": 32,
                                   "norm": "instance"}, net, "sketch2photo", "pix2pix")
    out = tmp_path / "latest_net_G.pth"
    assert run(export_main, [str(src), "--format", "peer", "-o", str(out)]) == 0
    ref = RefUnet(3, 3, 7, 4, "instance")
    ref.load_state_dict(torch.load(out, weights_only=True), strict=True)  # their layout, exactly
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert (ref.eval()(x) - net(x)).abs().max().item() <= 1e-5
    assert run(export_main, [str(src), "--format", "peer", "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{out}: already exists")

    res = _randomise(ResnetGenerator(3, 3, 4, 2, norm="batch"), seed=4)
    src = _export(tmp_path / "r", {"type": "resnet_generator", "base_channels": 4, "n_blocks": 2, "norm": "batch"}, res,
                  "sketch2photo", "pix2pix")
    out = tmp_path / "resnet_net_G.pth"
    export_peer(src, out)
    ref2 = RefResnet(3, 3, 4, 2, "batch")
    ref2.load_state_dict(torch.load(out, weights_only=True), strict=True)
    with torch.no_grad():
        assert (ref2.eval()(x[..., :32, :32]) - res(x[..., :32, :32])).abs().max().item() <= 1e-5

    bn = _randomise(UNet(3, 3, num_downs=7, base_channels=4, max_channels=32, norm="batch"), seed=5)  # encoder biases != 0
    src = _export(tmp_path / "b", {"type": "unet", "num_downs": 7, "base_channels": 4, "max_channels": 32, "norm": "batch"},
                  bn, "sketch2photo", "pix2pix")
    with pytest.raises(CheckpointError, match=r"encoder.0.0.bias is not zero"):
        export_peer(src, tmp_path / "bn_net_G.pth")
    assert not (tmp_path / "bn_net_G.pth").exists()
    with pytest.raises(ConfigError, match="has no peer layout"):
        from i2i.nn.srresnet import SRResNet

        export_peer(_export(tmp_path / "s", {"type": "srresnet", "scale": 2, "width": 8, "num_blocks": 1},
                            SRResNet(scale=2, width=8, num_blocks=1)), tmp_path / "s.pth")


def test_the_docs_offline_peer_file_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/model_card.md's "make a peer-format file offline" block, as written, then its i2i-infer line."""
    import re
    import textwrap

    import numpy as np
    from PIL import Image

    from i2i.cli import run
    from i2i.commands import infer_main

    doc = (Path(__file__).resolve().parents[1] / "docs" / "model_card.md").read_text()
    block = re.search(r"\*\*Make a peer-format file offline\*\*.*?```python\n(.*?)```", doc, re.DOTALL).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(textwrap.dedent(block), "docs offline peer file", "exec"), {})  # noqa: S102  (our own docs)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)).save("photo.png")
    assert run(infer_main, ["--checkpoint", "realesr-tiny-x4.pth", "photo.png", "-o", "photo_x4.png", "--device", "cpu"]) == 0
    assert np.asarray(Image.open("photo_x4.png")).shape == (36, 28, 3)
    assert load_model("realesr-tiny-x4.pth", device="cpu").card.provenance.architecture == {"generator": "Compact"}


def test_export_of_one_foreign_file_to_pretrained_and_onnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import numpy as np

    import i2i
    from i2i.cli import run
    from i2i.commands import export_main
    from i2i.foreign import LICENCES

    pytest.importorskip("onnxruntime")
    torch.manual_seed(6)
    net = SRVGGNetCompact(scale=2, width=8, num_conv=2).eval()
    f = tmp_path / "realesr-tiny-x2.pth"
    torch.save({"params": net.state_dict()}, f)
    monkeypatch.chdir(tmp_path)
    assert run(export_main, [str(f), "--format", "pretrained"]) == 0  # default: ./<stem>_pretrained, not inside the file
    folder = tmp_path / "realesr-tiny-x2_pretrained"
    info = json.loads((folder / "config.json").read_text())
    assert info["foreign_file"]["name"] == f.name and info["card"]["provenance"]["licence"] == LICENCES["Compact"]
    assert LICENCES["Compact"] in (folder / "README.md").read_text()
    model = i2i.load_model(folder, device="cpu")
    prov = model.card.provenance
    assert prov.format == "i2i-pretrained" and prov.architecture == {"generator": "Compact"}
    assert prov.sha256 == {f.name: load_model(f, device="cpu").card.provenance.sha256[f.name]}  # the source's digest
    img = np.random.default_rng(1).integers(0, 256, (10, 9, 3), dtype=np.uint8)
    a = i2i.from_pretrained(folder, device="cpu")(img)
    b = i2i.from_pretrained(f, device="cpu")(img)
    assert a.shape == (20, 18, 3) and np.array_equal(a, b)
    assert run(export_main, [str(f), "--format", "onnx"]) == 0
    assert (tmp_path / "realesr-tiny-x2_onnx" / "generator.onnx").is_file()

    ref = _randomise(RefResnet(3, 3, 4, 2, "instance"), seed=7)  # a CycleGAN direction keeps its name's meaning
    g = tmp_path / "latest_net_G_B.pth"
    torch.save(ref.state_dict(), g)
    assert run(export_main, [str(g), "--format", "pretrained", "-o", str(tmp_path / "hz")]) == 0
    card = i2i.load_model(tmp_path / "hz", device="cpu").card
    assert card.task == "cyclegan" and list(card.directions.slots) == ["BtoA"] and card.provenance.licence == "BSD-2-Clause"


def test_fine_tune_from_a_real_esrgan_file_and_export_it_back(tmp_path: Path) -> None:
    """A Real-ESRNet run started from a peer file (train.init), one step, exported back with --format
    peer and loaded by spandrel with i2i's output."""
    from spandrel import ModelLoader

    from i2i.cli import run
    from i2i.commands import export_main
    from i2i.config import load_config
    from i2i.engine.trainer import Trainer

    torch.manual_seed(11)
    peer = RRDBNet(scale=4, width=8, num_blocks=1, growth=32)
    f = tmp_path / "RealESRGAN_tiny_x4plus.pth"
    torch.save({"params_ema": peer.state_dict()}, f)
    root = Path(__file__).resolve().parent.parent
    tiny = ["logging.tracker=none", "logging.progress=false", "logging.sample_every=0", "eval.every=0", "eval.at_end=false",
            "models.generator.width=8", "models.generator.num_blocks=1", "models.generator.growth=32", "data.batch_size=2",
            "data.patch_size=64", "data.val_patch_size=32", "data.num_workers=0", "data.repeat=1", "recipe.gt_size=32",
            "recipe.queue_size=4", "train.log_every=1", "train.ckpt_every=1", "train.max_steps=1",
            f"train.init.generator={f}"]
    out_dir = tmp_path / "run"
    Trainer(load_config(root / "tasks/realesrnet_x4.yaml", tiny), output_dir=out_dir).fit()
    tuned = load_model(out_dir, device="cpu").generator
    start, now = peer.state_dict(), tuned.state_dict()
    assert max((now[k] - start[k]).abs().max().item() for k in start) <= 1e-3  # one Adam step (lr 2e-4) from the file
    back = tmp_path / "tuned_x4.pth"
    assert run(export_main, [str(out_dir), "--format", "peer", "-o", str(back)]) == 0
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert (ModelLoader().load_from_file(back)(x) - tuned(x).clamp(0, 1)).abs().max().item() <= 1e-5
