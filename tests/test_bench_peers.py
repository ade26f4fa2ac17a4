"""tools/bench_peers.py, the i2i side (issue 24, points 6 and 9): the peer-format weights it writes,
the comparison and the report. The peer itself (Real-ESRGAN in the bench venv) runs only in the bench,
never here: importing it in a test would make it a dependency."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, load_tool

bp = load_tool("bench_peers")


def _photo(side: int) -> torch.Tensor:
    return torch.from_numpy(bp.photo_u8(side)).permute(2, 0, 1)[None].float().div(255.0)


def rrdb_keys(blocks: int) -> list[str]:
    """RealESRGAN_x4plus's tensor names (basicsr/archs/rrdbnet_arch.py), written out by hand."""
    names = ["conv_first"]
    names += [f"body.{b}.rdb{r}.conv{c}" for b in range(blocks) for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    return sorted(f"{n}.{p}" for n in names for p in ("weight", "bias"))


def test_rrdbnet_file_has_realesrgan_x4plus_layout() -> None:
    with torch.device("meta"):  # 23 blocks, as the release file: names and shapes only, no values
        blob = bp.peer_layout("rrdbnet", bp.make_network("rrdbnet", seed=0))
    assert list(blob) == ["params_ema"]
    sd = blob["params_ema"]
    assert sorted(sd) == rrdb_keys(23) and len(sd) == 2 * (1 + 23 * 15 + 5)
    assert sd["conv_first.weight"].shape == (64, 3, 3, 3)
    assert sd["body.22.rdb3.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    assert sd["conv_last.weight"].shape == (3, 64, 3, 3)
    assert sum(v.numel() for v in sd.values()) == 16_697_987  # RealESRGAN_x4plus's parameter count


def test_srvgg_file_has_realesr_general_x4v3_layout() -> None:
    blob = bp.peer_layout("srvgg", bp.make_network("srvgg", seed=0))
    assert list(blob) == ["params"]
    sd = blob["params"]
    convs = [f"body.{2 * k}.{p}" for k in range(34) for p in ("weight", "bias")]  # first + 32 + last
    prelus = [f"body.{2 * k + 1}.weight" for k in range(33)]
    assert sorted(sd) == sorted(convs + prelus)
    assert sd["body.66.weight"].shape == (3 * 16, 64, 3, 3) and sd["body.1.weight"].shape == (64,)


@pytest.mark.parametrize("arch", ["rrdbnet", "srvgg"])
def test_calibration_sets_the_output_statistics_exactly(arch: str) -> None:
    net = bp.make_network(arch, seed=1, blocks=1)
    x = _photo(16)
    bp.calibrate(net, arch, x)
    with torch.no_grad():
        y = net(x)
        if arch == "srvgg":
            y = y - torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
    mean, std = (0.5, 0.2) if arch == "rrdbnet" else (0.0, 0.05)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.full((3,), mean), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.full((3,), std), atol=1e-4, rtol=0)


@pytest.mark.parametrize(("arch", "family"), [("rrdbnet", "ESRGAN"), ("srvgg", "Compact")])
def test_written_file_loads_through_i2i_as_the_same_network(tmp_path: Path, arch: str, family: str) -> None:
    from i2i.inference import load_model

    path = tmp_path / f"{arch}.pth"
    info = bp.make_peer_weights(arch, path, _photo(16), seed=3, blocks=1)
    assert info["wrapper"] == ("params_ema" if arch == "rrdbnet" else "params") and len(info["sha256"]) == 64
    model = load_model(path, device="cpu")
    assert model.card.provenance.architecture == {"generator": family} and model.card.scale == 4
    ref = bp.make_network(arch, seed=3, blocks=1)
    ref.load_state_dict(next(iter(torch.load(path, weights_only=True).values())))
    x = _photo(12)
    with torch.no_grad():
        torch.testing.assert_close(model.generator(x), ref(x), atol=1e-5, rtol=1e-5)


def test_diff_levels_by_hand() -> None:
    a = np.array([0, 10, 255], dtype=np.uint8)
    b = np.array([1, 10, 250], dtype=np.uint8)
    d = bp.diff_levels(a, b)  # |a - b| = 1, 0, 5 (no uint8 wrap-around)
    assert d["mean"] == pytest.approx(2.0) and d["max"] == 5
    assert d["p999"] == pytest.approx(1 + 0.998 * 4)  # sorted 0, 1, 5; position 0.999 · 2 = 1.998
    assert d["fraction_differing"] == pytest.approx(2 / 3)
    assert bp.within({"mean": 0.5, "p999": 2.0}) and not bp.within({"mean": 0.51, "p999": 0.0})
    assert not bp.within({"mean": 0.0, "p999": 2.5})
    with pytest.raises(ValueError, match="shapes differ"):
        bp.diff_levels(a, b[:2])


def _report() -> dict:
    cmp = {"mean": 0.0, "p999": 0.0, "max": 0, "fraction_differing": 0.0, "within_goal": True}
    comparisons = {k: dict(cmp) for k in ("whole: i2i vs peer", "tiled: i2i --tile-overlap 10 vs peer tiled",
                                          "tiled: i2i (default, exact) vs peer whole",
                                          "peer tiled vs peer whole (the peer's seams)")}
    comparisons["peer tiled vs peer whole (the peer's seams)"].update(mean=0.6, p999=7.0, within_goal=False)
    ratios = {"i2i_fp32": 0.5, "i2i_fp32_pad10": 1.2, "i2i_fast": 1.0, "i2i_fast_pad10": 2.4, "i2i_fp32_whole": 1.1,
              "i2i_fast_whole": 2.2}
    return {"schema": 1, "meta": {}, "weights": {}, "shapes": {},
            "parity": {"srvgg": {"comparisons": comparisons}},
            "speed": {"srvgg": {"median_s": {}, "times_s": {}, "ratio_peer_over_i2i": ratios}},
            "rss": {"srvgg": {"ratio_i2i_over_peer": {"i2i_fp32": 0.9}}},
            "big": {"rss_peak_mib": 1000.0, "under_goal": True}}


def test_summary_and_report_layout() -> None:
    r = _report()
    r["summary"] = s = bp.summary(r)
    assert s["parity_srvgg_whole"] is True and s["parity_srvgg_tiled_exact_vs_peer_whole"] is True
    assert s["peer_srvgg_seams_mean_p999"] == [0.6, 7.0]
    assert s["speed_srvgg_fp32_pad10"] == 1.2 and s["speed_srvgg_fast_pad10"] == 2.4 and s["speed_srvgg_fast_whole"] == 2.2
    assert s["big_rss_mib"] == 1000.0 and s["rss_srvgg_i2i_over_peer"] == {"i2i_fp32": 0.9}
    assert bp.check_report(r) == []
    del r["summary"], r["parity"]["srvgg"]["comparisons"]["whole: i2i vs peer"]["p999"], r["speed"]["srvgg"]["times_s"]
    assert bp.check_report(r) == ["summary: expected dict", "parity.srvgg.whole: i2i vs peer: no p999",
                                  "speed.srvgg: no times_s"]
    assert bp.GOALS["big_rss_mib"] == pytest.approx(1430.51, abs=0.01)  # 1.5 GB in MiB


def test_i2i_command_line() -> None:
    args = bp.i2i_args(Path("w.pth"), Path("a.png"), Path("o.png"), 32, overlap=10, fast=True)
    assert args == ["--checkpoint", "w.pth", "a.png", "-o", "o.png", "--tile", "32", "--device", "cpu",
                    "--tile-overlap", "10", "--fast"]


def test_peer_script_imports_the_peer_and_never_i2i() -> None:
    """The peer side runs in the bench venv, which has no i2i; it is parsed here, not imported."""
    tree = ast.parse((ROOT / "tools" / "peers" / "realesrgan_peer.py").read_text())
    mods = {(n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
            for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in (n.names if isinstance(n, ast.Import) else [n])}
    assert {"realesrgan", "basicsr", "cv2", "torch"} <= mods and "i2i" not in mods
    script = (ROOT / "tools" / "peers" / "make_bench_venv.sh").read_text()
    assert "--no-deps basicsr" in script and "_functional_tensor" in script
