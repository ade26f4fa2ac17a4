#!/usr/bin/env python
"""Check a GPU (or the CPU) in one command: CUDA tests, short training runs, the tools, the benchmark.

    python tools/gpu_check.py --json $OUT/gpu_check.json --md $OUT/gpu_check.md      # ~9 minutes
    python tools/gpu_check.py --device cpu --tiny --recipes acgan_mnist --skip bench  # a smoke run

Parts, each a subprocess with a timeout (a hang or a crash is recorded, not fatal):

* ``tests``  ``python -m pytest -q -m cuda`` (the device-parametrised tests' CUDA cases;
  ``--pytest-args`` replaces ``-m cuda``): passed / failed / skipped counts.
* ``train``  every ``tasks/*.yaml`` (or ``--recipes``) for ``--steps`` steps in each of
  ``--precisions`` through ``tools/train.py``: exit code, wall time, steps/s (the last logging
  interval's images/s over the batch), whether the last logged losses are finite.
* ``tools``  ``tools/infer.py`` and ``tools/eval.py --json`` on each recipe's run (and the
  shipped SR model), with ``--device``; exit codes and times.
* ``bench``  ``tools/bench.py --compare plain fast`` on the issue's targets (``--quick`` with ``--tiny``).

One JSON (``--json``: everything, with date, GPU name, torch/CUDA versions) and a markdown
table (``--md``); a summary on stdout, progress on stderr; exit code 1 if any part failed.
``--budget-s`` bounds the whole check: each part gets a share as its timeout, and training
runs that no longer fit are recorded as skipped.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PARTS = ("tests", "train", "tools", "bench")
# of --budget-s; unused time carries over. Sized from CPU runs: ~20 training and ~20 tool processes
# of ~5-10 s start-up each, and bench's whole-tool targets (each PNG encode of a 4096² output ~3 s)
SHARES = {"tests": 0.12, "train": 0.36, "tools": 0.22, "bench": 0.30}
FAMILY = {"acgan": "digits", "cgan": "digits", "dcgan": "digits", "gan": "digits", "pix2pix": "sketch2photo",
          "srresnet": "sr", "srgan": "sr", "segmentation": "seg"}
BENCH_TARGETS = ["srgan", "pix2pix", "pix2pix_b4", "sr_tool", "sr_tool_folder"]  # issue 11's targets


@dataclass
class Result:
    """One subprocess: what ran, how it ended. ``status``: ok | failed | timeout | skipped: <why>."""

    name: str
    cmd: list[str] = field(default_factory=list)
    status: str = "ok"
    rc: int | None = None
    wall_s: float = 0.0
    tail: str = ""  # the end of stderr (or stdout) when it did not succeed
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "timeout")


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_cmd(name: str, cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[Result, str]:
    """Run ``cmd`` in its own process group; on timeout the whole group is killed (a tool's
    own children included), so one hang cannot stall the check. Returns (result, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        res = Result(name, cmd, "timeout", None, time.perf_counter() - t0, f"timed out after {timeout:.0f} s")
        return res, out
    res = Result(name, cmd, "ok" if proc.returncode == 0 else "failed", proc.returncode, time.perf_counter() - t0)
    if proc.returncode != 0:
        res.tail = (err.strip() or out.strip())[-1500:]
    return res, out


class Budget:
    """Deadlines per part: each part may use its share plus whatever earlier parts left unused."""

    def __init__(self, total_s: float, parts: list[str]):
        self.start = time.perf_counter()
        self.total = total_s
        weights = {p: SHARES[p] for p in parts}
        norm = sum(weights.values()) or 1.0
        self.shares = {p: total_s * w / norm for p, w in weights.items()}
        self.used = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def part_deadline(self, part: str) -> float:
        """Elapsed-time mark at which ``part`` must be done."""
        order = list(self.shares)
        return sum(self.shares[p] for p in order[: order.index(part) + 1])

    def left(self, part: str) -> float:
        return self.part_deadline(part) - self.elapsed()


# ----------------------------------------------------------------------------- environment
def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                           "device": device, "torch": torch.__version__, "cuda": torch.version.cuda,
                           "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
                           "python": platform.python_version(), "host": platform.node(),
                           "cpu_count": os.cpu_count(), "gpu": None}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update({"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                    "gpu_capability": f"{props.major}.{props.minor}", "bf16_supported": torch.cuda.is_bf16_supported()})
        from i2i import perf

        env["autocast_dtype_auto"] = str(perf.autocast_dtype(device, "auto"))  # the bench's fast: bf16 expected
    return env


def child_env(device: str) -> dict[str, str]:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", I2I_CACHE=os.environ.get("I2I_CACHE", ""))
    if not env["I2I_CACHE"]:
        del env["I2I_CACHE"]
    if device == "cpu":  # Accelerate takes CUDA whenever it is present
        env["ACCELERATE_USE_CPU"] = "true"
    return env


# ----------------------------------------------------------------------------- tests
def parse_pytest(out: str) -> dict[str, int]:
    """Counts from pytest's last summary line ("3 passed, 1 failed, 2 skipped in 4.2s")."""
    lines = [ln for ln in out.strip().splitlines() if re.search(r"\d+ (passed|failed|error|skipped|deselected)", ln)]
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "deselected": 0}
    for n, what in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", lines[-1] if lines else ""):
        counts["errors" if what.startswith("error") else what] += int(n)
    return counts


def part_tests(args: argparse.Namespace, budget: Budget) -> Result:
    extra = args.pytest_args.split() if args.pytest_args else ["-m", "cuda"]
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    log(f"tests: {' '.join(cmd[2:])}")
    res, out = run_cmd("pytest " + " ".join(extra), cmd, budget.left("tests"), child_env(args.device))
    res.info = parse_pytest(out)
    if res.rc == 5:  # pytest: nothing collected
        res.status = "skipped: no CUDA tests here" if args.device == "cpu" else "failed"
        res.tail = res.tail or "no tests collected"
    log(f"tests: {res.status} {res.info}")
    return res


# ----------------------------------------------------------------------------- training runs
def family(recipe: str) -> str:
    return next((f for k, f in sorted(FAMILY.items(), key=lambda kv: -len(kv[0])) if recipe.startswith(k)), "?")


def aligned_dataset(work: Path, side: int) -> Path:
    """A tiny A|B dataset for tasks/pix2pix_aligned.yaml (which ships no data): XDoG-free
    stand-ins, A = the photo's gray, B = the photo, side by side, 3 train + 1 val images."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from i2i.data.io import save_image

    root = work / "aligned"
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    for i, p in enumerate(photos):
        b = np.asarray(Image.fromarray(p).resize((side, side), Image.BICUBIC))
        a = np.repeat(b.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
        save_image(root / ("val" if i == 3 else "train") / f"{i}.jpg", np.concatenate([a, b], axis=1))
    return root


def recipe_overrides(recipe: str, tiny: bool, work: Path) -> list[str]:
    """Overrides that make ``recipe`` run here: no network access (random VGG), data for the
    aligned layout; with ``tiny`` also small nets, batches and crops."""
    fam = family(recipe)
    ov: list[str] = []
    if recipe == "srgan":
        ov.append("losses.content.weights=null")  # the ImageNet VGG19 cannot be downloaded offline
    if recipe == "pix2pix_aligned":
        ov.append(f"data.root={aligned_dataset(work, 32 if tiny else 286)}")
    ov += ["eval.at_end=false"] if fam == "digits" else ["eval.at_end=true", "eval.max_batches=2"]
    if not tiny:
        return ov
    small = {
        "digits": ["models.generator.base_channels=8", "models.discriminator.base_channels=8", "data.batch_size=8"],
        "sketch2photo": ["models.generator.base_channels=8", "models.generator.max_channels=32",
                         "models.discriminator.base_channels=8", "eval.batch_size=1"],
        "seg": ["models.generator.width=4", "data.batch_size=2", "eval.batch_size=10"],
        "sr": ["models.generator.width=8", "models.generator.num_blocks=1", "data.batch_size=2", "data.patch_size=24",
               "data.num_workers=0", "data.repeat=1", "data.val_patch_size=32", "eval.batch_size=2"],
    }[fam]
    if recipe == "gan_mnist":
        small = ["models.generator.hidden=[32, 32]", "models.discriminator.hidden=[32]", "data.batch_size=8"]
    if recipe == "srgan":
        small += ["train.init={}", "models.discriminator.base_channels=8"]
    if recipe == "pix2pix_aligned":
        small = ["models.generator={type: unet, in_channels: 3, out_channels: 3, num_downs: 5, base_channels: 8, "
                 "norm: batch}", "models.discriminator.base_channels=8", "models.discriminator.n_layers=2",
                 "data.load_size=36", "data.crop_size=32", "data.num_workers=0"]
    return ov + small


def last_losses(run_dir: Path) -> dict[str, Any]:
    """From ``metrics.jsonl``: the last logged losses, whether all are finite, and steps/s."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return {"losses_finite": False, "note": "no metrics.jsonl"}
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    train = [r for r in rows if any(k.startswith(("g/", "d/")) for k in r)]
    if not train:
        return {"losses_finite": False, "note": "no losses logged"}
    last = train[-1]
    losses = {k: v for k, v in last.items() if k.startswith(("g/", "d/")) and isinstance(v, (int, float))}
    out: dict[str, Any] = {"last_step": last["step"], "losses": losses,
                           "losses_finite": all(math.isfinite(v) for v in losses.values()),
                           "nonfinite_steps": max((r.get("train/nonfinite_steps", 0) for r in rows), default=0)}
    import yaml

    batch = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["batch_size"]
    if "perf/img_per_s" in last:  # the last logging interval: past start-up and warm-up
        out["images_per_s"] = last["perf/img_per_s"]
        out["steps_per_s"] = last["perf/img_per_s"] / batch
    return out


def train_one(recipe: str, precision: str, n: int, args: argparse.Namespace, work: Path, timeout: float) -> Result:
    run_dir = work / "runs" / f"{recipe}-{precision}"
    cmd = [PY, str(ROOT / "tools" / "train.py"), str(ROOT / "tasks" / f"{recipe}.yaml"),
           f"train.max_steps={n}", f"train.mixed_precision={precision}", "logging.tracker=none",
           "logging.progress=false", "eval.every=0", "logging.sample_every=0", f"train.ckpt_every={n}",
           f"train.log_every={max(1, n // 5)}", "train.keep_last=1", *recipe_overrides(recipe, args.tiny, work),
           "--output-dir", str(run_dir)]
    res, _ = run_cmd(f"{recipe} {precision}", cmd, timeout, child_env(args.device))
    res.info = {"recipe": recipe, "precision": precision, "steps": n, "run_dir": str(run_dir)}
    if res.status == "ok":
        res.info.update(last_losses(run_dir))
        if not res.info.get("losses_finite"):
            res.status, res.tail = "failed", "last logged losses not finite: " + json.dumps(res.info.get("losses"))
    elif args.device == "cpu" and precision == "fp16" and re.search(r"fp16|float16|half", res.tail, re.I):
        res.status = "skipped: fp16 needs CUDA"
    return res


def next_steps(last: Result | None, fair_s: float, args: argparse.Namespace) -> int:
    """Steps for the next run so that it fits its fair share of the time left, judged by the last
    run's start-up overhead and speed (exact for a recipe's second precision, a guess across
    recipes). ``--steps`` given explicitly is kept as is."""
    if args.steps_fixed or last is None or not last.info.get("steps_per_s"):
        return args.steps
    sps, n = last.info["steps_per_s"], last.info["steps"]
    overhead = max(0.0, last.wall_s - n / sps)
    return int(min(args.steps, max(20, (fair_s - overhead) * sps)))


def part_train(args: argparse.Namespace, work: Path, budget: Budget) -> list[Result]:
    """Every recipe × precision, recipe-major, each with a fair share of what is left as timeout;
    the default step count shrinks when the runs so far say the rest would not fit."""
    jobs = [(r, p) for r in args.recipes for p in args.precisions]
    results: list[Result] = []
    last: Result | None = None
    for i, (recipe, precision) in enumerate(jobs):
        left = budget.left("train")
        if left < 5:
            results.append(Result(f"{recipe} {precision}", status="skipped: out of time budget",
                                  info={"recipe": recipe, "precision": precision}))
            continue
        # twice a fair share: a slow recipe may borrow from fast ones, but cannot eat the rest
        timeout = min(left, 2 * left / (len(jobs) - i))
        steps = next_steps(last, left / (len(jobs) - i), args)
        log(f"train {i + 1}/{len(jobs)}: {recipe} {precision}, {steps} steps (timeout {timeout:.0f} s)")
        res = train_one(recipe, precision, steps, args, work, timeout)
        last = res if res.status == "ok" else last
        sps = res.info.get("steps_per_s")
        log(f"  {res.status}, {res.wall_s:.1f} s" + (f", {sps:.1f} steps/s" if sps else "")
            + (f"\n  {res.tail[-300:]}" if res.failed else ""))
        results.append(res)
    return results


# ----------------------------------------------------------------------------- tools
def tool_inputs(work: Path) -> dict[str, Path]:
    import numpy as np
    from PIL import Image
    from skimage import data

    from i2i.data.io import save_image

    def photo(side: int) -> np.ndarray:
        return np.asarray(Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC))

    d = work / "inputs"
    return {"photo": save_image(d / "photo.png", photo(128)), "lr": save_image(d / "lr.png", photo(64))}


def conditional(run_dir: Path) -> bool:
    """Whether a digits run's generator takes labels (cgan, acgan), from the run's config."""
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())["recipe"]["type"] in ("cgan", "acgan")


def tool_calls(train: list[Result], args: argparse.Namespace, work: Path) -> list[tuple[str, list[str], bool]]:
    """(name, argv after the tool, is_eval) for every recipe that has a successful run."""
    ins = tool_inputs(work)
    out = work / "tool_out"
    samples = "10" if args.tiny else "100"  # digits eval trains (once, cached) a classifier on the CPU
    calls: list[tuple[str, list[str], bool]] = [
        ("infer sr shipped", ["--task", "sr", str(ins["lr"]), "-o", str(out / "shipped_sr.png")], False),
        ("infer sr shipped --fast", ["--task", "sr", "--fast", str(ins["lr"]), "-o", str(out / "shipped_fast.png")], False)]
    done: set[str] = set()
    digits_eval: list[tuple[str, list[str], bool]] = []
    for r in train:
        recipe = r.info.get("recipe")
        if r.status != "ok" or recipe in done:
            continue
        done.add(recipe)
        run, fam, o = r.info["run_dir"], family(recipe), out / recipe
        ck = ["--checkpoint", run]
        if fam == "digits":
            label = ["--label", "3"] if conditional(Path(run)) else []  # gan/dcgan refuse --label
            calls.append((f"infer {recipe}", ck + label + ["-n", "8", "-o", f"{o}.png"], False))
            if not digits_eval:
                digits_eval.append((f"eval {recipe}", ck + ["--json", "--samples-per-class", samples], True))
            continue
        extra = {"sr": [str(ins["lr"])], "sketch2photo": ["--from-photo", str(ins["photo"])],
                 "seg": [str(ins["photo"]), "--overlay"]}[fam]
        if recipe == "pix2pix_aligned":  # trained on A|B pairs: A is given as is, no sketch
            extra = [str(ins["photo"])]
        calls.append((f"infer {recipe}", ck + extra + ["-o", f"{o}.png"], False))
        calls.append((f"eval {recipe}", ck + ["--json"], True))
    # last, with all the time then left: on a fresh machine it first trains its digit classifier
    # on the CPU (cached afterwards), which a fair share of the part's time may not cover
    return calls + digits_eval


def part_tools(train: list[Result], args: argparse.Namespace, work: Path, budget: Budget) -> list[Result]:
    calls = tool_calls(train, args, work)
    results: list[Result] = []
    eval_device = True  # until tools/eval.py says it has no --device
    for i, (name, argv, is_eval) in enumerate(calls):
        left = budget.left("tools")
        if left < 5:
            results.append(Result(name, status="skipped: out of time budget"))
            continue
        tool = "eval" if is_eval else "infer"
        dev = ["--device", args.device] if (not is_eval or eval_device) else []
        cmd = [PY, str(ROOT / "tools" / f"{tool}.py"), *argv, *dev]
        timeout = min(left, 3 * left / (len(calls) - i))
        log(f"tools {i + 1}/{len(calls)}: {name}")
        res, out = run_cmd(name, cmd, timeout, child_env(args.device))
        if is_eval and res.rc == 2 and "unrecognized arguments: --device" in res.tail:
            # an eval.py without --device: run on its own default device and say so
            eval_device = False
            res, out = run_cmd(name, cmd[: -2], timeout, child_env(args.device))
        if is_eval:
            res.info["device_flag"] = eval_device
            if not eval_device:
                res.info["note"] = "tools/eval.py has no --device: ran on its default device"
        if is_eval and res.status == "ok":
            res.info.update(eval_summary(out))
        log(f"  {res.status}, {res.wall_s:.1f} s" + (f"\n  {res.tail[-300:]}" if res.failed else ""))
        results.append(res)
    return results


def eval_summary(stdout: str) -> dict[str, Any]:
    """The scalar metrics of eval.py's JSON line (its last stdout line)."""
    try:
        m = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"note": "no JSON line on stdout"}
    return {"metrics": {k: v for k, v in m.items() if isinstance(v, (int, float)) and k.count("/") == 0}}


# ----------------------------------------------------------------------------- bench
def part_bench(args: argparse.Namespace, work: Path, budget: Budget) -> Result:
    out = work / "bench.json"
    extra = args.bench_args.split() if args.bench_args else (
        ["--quick", "--targets", "sr_infer"] if args.tiny else ["--targets", *BENCH_TARGETS, "--set", "sr_tool.rounds=2"])
    cmd = [PY, str(ROOT / "tools" / "bench.py"), "--device", args.device, "--compare", "plain", "fast", "--no-data",
           *extra, "--json", str(out)]
    log(f"bench: {' '.join(cmd[2:])} (timeout {budget.left('bench'):.0f} s)")
    res, _ = run_cmd("bench", cmd, budget.left("bench"), child_env(args.device))
    if out.is_file():  # bench writes its JSON after every target: a timeout keeps what was done
        res.info = json.loads(out.read_text())
    log(f"bench: {res.status}, {res.wall_s:.1f} s" + (f"\n  {res.tail[-300:]}" if res.failed else ""))
    return res


# ----------------------------------------------------------------------------- report
def bench_rows(b: dict[str, Any]) -> list[str]:
    rows = []
    for t, r in b.get("targets", {}).items():
        if "whole_over_parts" in r:
            rows.append(f"| {t} | whole {r['whole_s']:.3f} s | parts {r['parts_sum_s']:.3f} s | "
                        f"whole / parts **{r['whole_over_parts']:.2f}** |")
        elif "speedup" in r:
            c = r["configs"]
            rows.append(f"| {t} | plain {c['plain']['median_s']:.4f} s | fast {c['fast']['median_s']:.4f} s | "
                        f"fast / plain **{r['speedup']:.2f}×** |")
        elif "skipped" in r or "error" in r:
            rows.append(f"| {t} | {r.get('skipped') or 'error'} | | |")
    for name, per in b.get("derived", {}).items():
        rows.append(f"| {name} | " + ", ".join(f"{k} {v:.2f}×" for k, v in per.items()) + " | | |")
    return rows


def markdown(report: dict[str, Any]) -> str:
    e = report["environment"]
    lines = [f"# GPU check {e['date']}", "",
             f"{e['gpu'] or 'no GPU'} · device `{e['device']}` · torch {e['torch']} · CUDA {e['cuda']} · "
             f"budget {report['budget_s']:.0f} s, used {report['wall_s']:.0f} s · "
             f"**{'FAILED' if report['failed'] else 'passed'}**", ""]
    t = report["parts"].get("tests")
    if t:
        i = t["info"]
        lines += ["## Tests", "", "| command | status | passed | failed | errors | skipped | s |", "|---|---|---|---|---|---|---|",
                  f"| `{t['name']}` | {t['status']} | {i.get('passed', 0)} | {i.get('failed', 0)} | "
                  f"{i.get('errors', 0)} | {i.get('skipped', 0)} | {t['wall_s']:.1f} |", ""]
    if "train" in report["parts"]:
        lines += ["## Training runs", "", "| recipe | precision | status | steps | wall s | steps/s | last losses finite |",
                  "|---|---|---|---|---|---|---|"]
        for r in report["parts"]["train"]:
            i = r["info"]
            sps = f"{i['steps_per_s']:.1f}" if i.get("steps_per_s") else "–"
            fin = {True: "yes", False: "**no**"}.get(i.get("losses_finite"), "–")
            lines.append(f"| {i.get('recipe')} | {i.get('precision')} | {r['status']} | {i.get('steps', '–')} | "
                         f"{r['wall_s']:.1f} | {sps} | {fin} |")
        lines.append("")
    if "tools" in report["parts"]:
        lines += ["## Tools", "", "| call | status | exit | s | note |", "|---|---|---|---|---|"]
        for r in report["parts"]["tools"]:
            lines.append(f"| {r['name']} | {r['status']} | {r['rc']} | {r['wall_s']:.1f} | {r['info'].get('note', '')} |")
        lines.append("")
    b = report["parts"].get("bench")
    if b:
        lines += ["## Benchmark", "", f"status {b['status']}, {b['wall_s']:.0f} s", "",
                  "| target | | | ratio |", "|---|---|---|---|", *bench_rows(b["info"]), ""]
    return "\n".join(lines)


def summary(report: dict[str, Any]) -> str:
    out = []
    for part, v in report["parts"].items():
        rs = v if isinstance(v, list) else [v]
        bad = [r["name"] for r in rs if r["status"] in ("failed", "timeout")]
        ok = sum(r["status"] == "ok" for r in rs)
        skipped = sum(r["status"].startswith("skipped") for r in rs)
        out.append(f"{part:<6} {ok} ok, {len(bad)} failed, {skipped} skipped" + (f": {', '.join(bad)}" if bad else ""))
    return "\n".join(out)


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", help="write the whole report here")
    ap.add_argument("--md", help="write the markdown tables here")
    ap.add_argument("--skip", default="", help=f"comma-separated parts to skip: {','.join(PARTS)}")
    ap.add_argument("--steps", type=int, default=None,
                    help="training steps per run (default: 200, fewer if the budget runs short; 3 with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="small nets, batches and crops; bench --quick")
    ap.add_argument("--recipes", default=None, help="comma-separated task names (default: every tasks/*.yaml)")
    ap.add_argument("--precisions", default="fp16,bf16", help="comma-separated (default fp16,bf16)")
    ap.add_argument("--pytest-args", default=None, help="instead of '-m cuda', e.g. 'tests/test_perf.py -k fold'")
    ap.add_argument("--bench-args", default=None, help="instead of the default targets, e.g. '--quick --targets sr_infer'")
    ap.add_argument("--budget-s", type=float, default=540.0, help="whole check's time budget (default 540)")
    ap.add_argument("--work-dir", default=None, help="runs and outputs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    if args.skip - set(PARTS):
        ap.error(f"--skip: unknown part(s) {', '.join(sorted(args.skip - set(PARTS)))}; expected {','.join(PARTS)}")
    all_recipes = sorted(p.stem for p in (ROOT / "tasks").glob("*.yaml"))
    args.recipes = args.recipes.split(",") if args.recipes else all_recipes
    if set(args.recipes) - set(all_recipes):
        ap.error(f"--recipes: unknown {', '.join(sorted(set(args.recipes) - set(all_recipes)))}")
    args.precisions = args.precisions.split(",")
    args.steps_fixed = args.steps is not None
    if args.steps is None:  # a few hundred steps in the full 9-minute budget, fewer in a smaller one
        args.steps = 3 if args.tiny else max(20, min(200, int(200 * args.budget_s / 540)))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    parts = [p for p in PARTS if p not in args.skip]
    budget = Budget(args.budget_s, parts)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="i2i_gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"environment": environment(args.device), "budget_s": args.budget_s,
                              "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
                              "work_dir": str(work), "parts": {}}
    log(f"{report['environment'].get('gpu') or args.device}, torch {report['environment']['torch']}, "
        f"parts {','.join(parts)}, budget {args.budget_s:.0f} s, work dir {work}")

    def as_dicts(r: Result | list[Result]) -> Any:
        return [asdict(x) for x in r] if isinstance(r, list) else asdict(r)

    train: list[Result] = []
    for part in parts:
        if part == "tests":
            report["parts"]["tests"] = as_dicts(part_tests(args, budget))
        elif part == "train":
            train = part_train(args, work, budget)
            report["parts"]["train"] = as_dicts(train)
        elif part == "tools":
            report["parts"]["tools"] = as_dicts(part_tools(train, args, work, budget))
        elif part == "bench":
            report["parts"]["bench"] = as_dicts(part_bench(args, work, budget))
    report["wall_s"] = budget.elapsed()
    statuses = [r["status"] for v in report["parts"].values() for r in (v if isinstance(v, list) else [v])]
    report["failed"] = any(s in ("failed", "timeout") for s in statuses)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(markdown(report))
    print(summary(report))
    print(f"gpu_check: {'FAILED' if report['failed'] else 'passed'} in {report['wall_s']:.0f} s")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
