"""tools/gpu_check.py on the CPU path, end to end, so the GPU check cannot rot between GPU visits.

The quick case (~40 s on 2 cores): two recipes × bf16 × 3 steps of tiny nets, one small test
selection, the tools on those runs, and the benchmark's ``--quick`` SR targets (``sr_infer`` and
the whole-tool ``sr_tool``). Asserted on the JSON and the markdown, not only the exit code.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]


def _gpu_check():
    return load_tool("gpu_check")


def _run(tmp_path: Path, *extra: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict, str]:
    out_json, out_md = tmp_path / "gc.json", tmp_path / "gc.md"
    cmd = [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--tiny",
           "--json", str(out_json), "--md", str(out_md), "--work-dir", str(tmp_path / "work"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out_json.is_file(), proc.stderr[-2000:]
    return proc, json.loads(out_json.read_text()), out_md.read_text()


def test_gpu_check_cpu_tiny_end_to_end(tmp_path):
    proc, rep, md = _run(tmp_path, "--recipes", "segmentation_baseline,srresnet", "--precisions", "bf16",
                         "--pytest-args", "tests/test_perf.py -k autocast_dtype_choices",
                         "--bench-args", "--quick --targets sr_infer sr_tool --iters 1 --warmup 0")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert not rep["failed"] and "passed" in proc.stdout
    env = rep["environment"]
    assert env["device"] == "cpu" and env["torch"] and "date" in env

    tests = rep["parts"]["tests"]
    assert tests["status"] == "ok" and tests["info"]["passed"] == 1 and tests["info"]["failed"] == 0

    train = rep["parts"]["train"]
    assert [(r["info"]["recipe"], r["info"]["precision"]) for r in train] == [
        ("segmentation_baseline", "bf16"), ("srresnet", "bf16")]
    for r in train:
        assert r["status"] == "ok" and r["rc"] == 0 and r["wall_s"] > 0
        assert r["info"]["losses_finite"] is True and r["info"]["last_step"] == 3 and r["info"]["steps_per_s"] > 0
        assert (Path(r["info"]["run_dir"]) / "export" / "config.json").is_file()

    tools = {r["name"]: r for r in rep["parts"]["tools"]}
    assert set(tools) == {"infer sr shipped", "infer sr shipped --fast", "infer segmentation_baseline",
                          "eval segmentation_baseline", "infer srresnet", "eval srresnet"}
    assert all(r["status"] == "ok" and r["rc"] == 0 for r in tools.values())
    assert "--device" in tools["infer srresnet"]["cmd"]
    assert "miou" in tools["eval segmentation_baseline"]["info"]["metrics"]
    assert "psnr_y" in tools["eval srresnet"]["info"]["metrics"]

    bench = rep["parts"]["bench"]
    assert bench["status"] == "ok"
    targets = bench["info"]["targets"]
    assert targets["sr_infer"]["speedup"] > 0 and targets["sr_tool"]["whole_over_parts"] > 0

    assert "## Training runs" in md and "| srresnet | bf16 | ok | 3 |" in md
    assert "| eval srresnet | ok | 0 |" in md
    assert "| sr_tool | whole " in md and "fast / plain" in md and "**passed**" in md


def test_gpu_check_records_a_hang_and_parses_pytest():
    gc = _gpu_check()
    res, _ = gc.run_cmd("hang", [sys.executable, "-c", "import time; time.sleep(60)"], timeout=1.0)
    assert res.status == "timeout" and res.failed and res.wall_s < 30
    res, _ = gc.run_cmd("fail", [sys.executable, "-c", "import sys; sys.exit('boom')"], timeout=30)
    assert res.status == "failed" and res.rc == 1 and "boom" in res.tail
    assert gc.parse_pytest("..\n3 passed, 1 failed, 2 skipped, 5 deselected in 4.2s\n") == {
        "passed": 3, "failed": 1, "errors": 0, "skipped": 2, "deselected": 5}
    assert gc.family("gan_mnist") == "digits" and gc.family("segmentation_adversarial") == "seg"
    assert gc.family("pix2pix_aligned") == "sketch2photo" and gc.family("srgan") == "sr"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("I2I_FULL_GPU_CHECK") != "1",
                    reason="~10 min: opt-in with I2I_FULL_GPU_CHECK=1 (the suite's 15-minute budget; "
                           "test_gpu_check_cpu_tiny_end_to_end covers the CPU path every run)")
@pytest.mark.timeout(1800)
def test_gpu_check_cpu_tiny_every_recipe(tmp_path):
    """Every tasks/*.yaml in fp16 and bf16 (fp16 may be recorded as skipped on CPU), the digits
    eval included: it trains its classifier in the test's fresh cache, so ~10 min on 2 busy
    cores (3 min with the classifier cached)."""
    proc, rep, md = _run(tmp_path, "--skip", "tests,bench", "--budget-s", "1700", timeout=1750)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    recipes = sorted(p.stem for p in (ROOT / "tasks").glob("*.yaml"))
    assert sorted({r["info"]["recipe"] for r in rep["parts"]["train"]}) == recipes
    for r in rep["parts"]["train"]:
        assert r["status"] == "ok" or r["status"] == "skipped: fp16 needs CUDA", r
    assert all(r["status"] == "ok" for r in rep["parts"]["tools"])


def test_gpu_check_scales_steps_to_the_budget_and_bench_flags():
    gc = _gpu_check()
    args = gc.parse_args(["--device", "cpu"])
    assert args.steps == 200 and not args.steps_fixed
    last = gc.Result("r", wall_s=30.0, info={"steps": 200, "steps_per_s": 10.0})  # 10 s start-up + 20 s of steps
    assert gc.next_steps(None, 5.0, args) == 200
    assert gc.next_steps(last, 60.0, args) == 200  # fits: keep the default
    assert gc.next_steps(last, 20.0, args) == 100  # (20 − 10) s × 10 steps/s
    assert gc.next_steps(last, 5.0, args) == 20  # never below 20
    fixed = gc.parse_args(["--device", "cpu", "--steps", "300"])
    assert gc.next_steps(last, 5.0, fixed) == 300

    bench = sys.modules.get("i2i_bench") or load_tool("bench")
    o = bench.parse_options("auto+cl+graphs")
    assert o.graphs and not o.compile and o.channels_last
    res = {"targets": {"pix2pix": {"configs": {"fast": {"median_s": 0.1}, "plain": {"median_s": 0.3}}},
                       "pix2pix_b4": {"configs": {"fast": {"median_s": 0.3}, "plain": {"median_s": 0.9}}}}}
    assert bench.derived_ratios(res)["pix2pix_b4/pix2pix"] == pytest.approx({"fast": 3.0, "plain": 3.0})
