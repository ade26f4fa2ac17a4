"""i2i.runs, the saved-run format: checkpoint and export files, slot weights and EMA, path
resolution, reading saved models back, the run lock.

Tests that go through a training (resume refusals, saving non-finite weights, a full disk) are
in tests/test_engine_trainer.py and tests/e2e/test_reliability.py."""
from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tool
from i2i import runs as ckpt
from i2i.errors import CheckpointError


@pytest.fixture
def run(tiny_cgan_run: Path, tmp_path: Path) -> Path:
    """A copy of conftest's 4-step CGAN run: checkpoints step_00000002 and step_00000004, export at step 4."""
    shutil.copytree(tiny_cgan_run, tmp_path / "run")
    return tmp_path / "run"


# ----------------------------------------------------------------------------- files and safety
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the hand-made pickle below, on purpose
def test_checkpoint_state_refuses_code_execution(tmp_path: Path) -> None:
    import os
    import pickle

    class Evil:
        def __reduce__(self):  # would run a shell command when unpickled
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    p = tmp_path / "state.pt"
    with open(p, "wb") as f:
        pickle.dump({"step": Evil()}, f)
    with pytest.raises(CheckpointError, match="refused to load"):
        ckpt.safe_torch_load(p)
    torch.save({"x": Evil()}, p)
    with pytest.raises(CheckpointError, match="refused to load"):
        ckpt.safe_torch_load(p)
    assert not (tmp_path / "pwned").exists()


def test_a_half_written_checkpoint_is_ignored(run: Path) -> None:
    tmp_path = run  # conftest's 4-step run (checkpoints at 2 and 4)
    # what a kill during a save leaves: a temp folder that was never renamed into place
    junk = tmp_path / "checkpoints" / ".tmp-step_00000006"
    junk.mkdir()
    (junk / "models.safetensors").write_bytes(b"\x00" * 10)
    assert ckpt.latest_checkpoint(tmp_path).name == "step_00000004"


# ----------------------------------------------------------------------------- exports: a kill mid-swap, damage, tampering
def test_a_kill_during_the_export_swap_leaves_a_readable_export(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = run / "export"
    assert ckpt.resolve_export_dir(export) == export
    real_rename = os.rename

    def killed_after_first(src, dst):  # noqa: ANN001, ANN202  (SIGKILL between the two renames)
        real_rename(src, dst)
        if str(dst).endswith("export.old"):
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "rename", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        ckpt.write_export(export, {"generator": {"w": torch.ones(2)}}, {"format": "i2i-export"})
    monkeypatch.undo()
    assert not export.exists() and (run / "export.tmp").is_dir()
    assert ckpt.resolve_export_dir(export) == run / "export.old"
    assert (ckpt.resolve_export_dir(export) / "generator.safetensors").is_file()
    from i2i.inference import load_model

    for where in (run, export):  # infer/eval read the run through the fallback
        assert load_model(where, device="cpu").path == run / "export.old"
    ckpt.write_export(export, {"generator": {"w": torch.ones(2)}}, {"format": "i2i-export"})  # the next save heals it
    assert ckpt.resolve_export_dir(export) == export and not (run / "export.old").exists()


@pytest.mark.parametrize("text, message", [
    ("{not json", r"config.json: not valid JSON \(JSONDecodeError"),
    ("[1, 2]", r"config.json: expected a JSON object \(an i2i export's config\), got list"),
    ('{"recipe": {"type": "acgan"}}', r"config.json: missing models \(not an i2i export\)"),
    ('{"models": {"generator": 3}, "recipe": {"type": "acgan"}}', r"config.json: models: expected a mapping of each network slot to a \{type: …\} spec"),
])
def test_a_broken_export_config_is_one_line(run: Path, text: str, message: str) -> None:
    from i2i.inference import load_model

    (run / "export" / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        load_model(run, device="cpu")


def test_tampered_export_weights_are_refused(run: Path) -> None:
    from safetensors.torch import save_file

    from i2i.inference import load_model

    path = run / "export" / "generator.safetensors"
    good = ckpt.load_tensors(path)
    load_model(run, device="cpu")  # as written: loads
    name = next(k for k, v in good.items() if v.is_floating_point() and v.numel() > 1)
    for dtype in (torch.float64, torch.float16):
        save_file({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in good.items()}, str(path))
        with pytest.raises(CheckpointError, match=r"generator.safetensors: wrong tensor dtypes: .* \(expected float32\)"):
            load_model(run, device="cpu")
    poisoned = dict(good)
    poisoned[name] = good[name].clone()
    poisoned[name].view(-1)[0] = float("nan")
    save_file(poisoned, str(path))
    with pytest.raises(CheckpointError, match=r"generator.safetensors: holds NaN or infinite weights"):
        load_model(run, device="cpu")
    p = subprocess.run(tool("infer") + ["--task", "acgan", "--checkpoint", str(run), "--device", "cpu", "-n", "1",
                                        "-o", str(run / "x.png")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "holds NaN or infinite weights" in p.stderr


def test_a_huge_width_in_an_export_config_is_refused_before_allocating(run: Path) -> None:
    import json

    from i2i.inference import load_model

    path = run / "export" / "config.json"
    info = json.loads(path.read_text())
    info["models"]["generator"]["base_channels"] = 1_000_000_000
    path.write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=r"export: models.generator: (the network would have more than [\d,]+ parameters|cannot be built)"):
        load_model(run, device="cpu")


def test_a_failed_write_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    with pytest.raises(CheckpointError, match=rf"^{path}: cannot write: no space left on the device \(disk full\)$"):
        with ckpt.writing(path):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(CheckpointError, match=rf"^{path}: cannot write: Permission denied$"):
        with ckpt.writing(path):
            raise OSError(errno.EACCES, "Permission denied")
    with pytest.raises(CheckpointError, match=r"cannot write: no space left"):  # torch.save's zip writer, disk full
        with ckpt.writing(path):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . file write failed")
    with pytest.raises(RuntimeError, match="^an unrelated bug$"):  # anything else is not a disk problem
        with ckpt.writing(path):
            raise RuntimeError("an unrelated bug")


def test_all_finite_looks_at_floating_point_values_only() -> None:
    assert ckpt.all_finite([]) and ckpt.all_finite([torch.tensor([1, 2]), torch.empty(0)])
    assert ckpt.all_finite([torch.ones(3), torch.tensor([2**62])])
    assert not ckpt.all_finite([torch.ones(3), torch.tensor([1.0, float("inf")])])
    assert not ckpt.all_finite([torch.tensor([float("nan")], dtype=torch.float16)])


def test_load_fitting_lists_every_kind_of_difference_in_one_line() -> None:
    net = nn.Linear(2, 2)
    with pytest.raises(CheckpointError) as e:
        ckpt.load_fitting(net, {"weight": torch.zeros(3, 2), "extra": torch.zeros(1)}, "w.safetensors (generator)")
    assert str(e.value) == ("w.safetensors (generator): weights do not fit Linear: missing bias; unexpected extra; "
                            "shapes (saved vs model) weight [3, 2] vs [2, 2]")
    ckpt.load_fitting(net, {"weight": torch.full((2, 2), 3.0), "bias": torch.zeros(2)}, "w")
    assert torch.equal(net.weight.detach(), torch.full((2, 2), 3.0))


def test_the_rng_state_round_trips_every_stream() -> None:
    state = ckpt.rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()  # move every stream on
    ckpt.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]
    assert ckpt.process_state({"pool": torch.ones(1)})["recipe"]["pool"].item() == 1.0


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_keys_are_slot_prefixed_and_the_ema_copy_is_preferred() -> None:
    torch.manual_seed(0)
    g, d, g_ema = nn.Linear(2, 3), nn.Linear(3, 1), nn.Linear(2, 3)
    tensors = ckpt.checkpoint_tensors({"generator": g, "discriminator": d}, {"generator": g_ema})
    assert sorted(tensors) == ["discriminator.bias", "discriminator.weight", "ema.generator.bias", "ema.generator.weight",
                               "generator.bias", "generator.weight"]
    assert torch.equal(tensors["ema.generator.weight"], g_ema.weight) and torch.equal(tensors["generator.weight"], g.weight)
    assert torch.equal(ckpt.slot_weights(tensors, "generator")["weight"], g_ema.weight)  # EMA where there is one
    assert torch.equal(ckpt.slot_weights(tensors, "generator", ema=False)["weight"], g.weight)
    assert torch.equal(ckpt.slot_weights(tensors, "discriminator")["bias"], d.bias)  # no EMA: the weights
    assert ckpt.slot_weights(tensors, "gen") == {} and ckpt.sub_state(tensors, "ema") .keys() == {"generator.weight",
                                                                                                  "generator.bias"}


def write_ckpt(run_dir: Path, step: int, keep_last: int = 3) -> Path:
    final = run_dir / "checkpoints" / f"step_{step:08d}"
    tmp = final.with_name(".tmp-" + final.name)
    tmp.mkdir(parents=True)
    ckpt.write_checkpoint(tmp, final, {"g.w": torch.full((2,), float(step))}, {"step": step}, "models: {}\n", keep_last)
    return final


def test_write_checkpoint_publishes_complete_folders_and_keeps_the_last(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        write_ckpt(tmp_path, step, keep_last=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000002", "step_00000003"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000002", "step_00000003"]
    tensors, state, rng = ckpt.read_checkpoint(ckpt.latest_checkpoint(tmp_path), rank=0)
    assert torch.equal(tensors["g.w"], torch.full((2,), 3.0)) and state == {"step": 3} and rng is None
    assert (ckpt.latest_checkpoint(tmp_path) / "config.yaml").read_text() == "models: {}\n"
    (tmp_path / "checkpoints" / "step_00000003" / "state.pt").unlink()
    with pytest.raises(CheckpointError, match=r"step_00000003: not a complete i2i checkpoint \(needs models.safetensors"):
        ckpt.read_checkpoint(tmp_path / "checkpoints" / "step_00000003", rank=0)


def test_resolve_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ckpt.resolve_run_dir("acgan", "out/x", True, "stamp") == Path("out/x")  # --output-dir wins
    assert ckpt.resolve_run_dir("acgan", None, None, "20250101-120000") == Path("runs/acgan-20250101-120000")
    assert ckpt.resolve_run_dir("acgan", None, "runs/a/checkpoints/step_00000010", "s") == Path("runs/a")
    assert ckpt.resolve_run_dir("acgan", None, "runs/a", "s") == Path("runs/a")
    with pytest.raises(CheckpointError, match=r"^--resume: no run of 'acgan' with a checkpoint under runs/"):
        ckpt.resolve_run_dir("acgan", None, True, "s")
    a1, a2, a3 = (write_ckpt(tmp_path / "runs" / n, 1).parent.parent for n in ("acgan-1", "acgan-2", "acgan-3"))
    shutil.rmtree(a3 / "checkpoints")  # the newest run holds no checkpoint: not a candidate
    write_ckpt(tmp_path / "runs" / "cgan-9", 1)  # another recipe's run, newer still
    for age, r in enumerate((a2, a1, a3, tmp_path / "runs" / "cgan-9")):  # oldest first: time, not name, decides
        os.utime(r, (1000 + age, 1000 + age))
    assert ckpt.resolve_run_dir("acgan", None, True, "s") == Path("runs/acgan-1")  # the newest holding a checkpoint


def test_resume_candidates(tmp_path: Path) -> None:
    assert ckpt.resume_candidates(tmp_path, None) == []  # a fresh directory
    for step in (2, 4, 6):
        write_ckpt(tmp_path, step)
    (tmp_path / "checkpoints" / ".tmp-step_00000008").mkdir()  # a save cut short: never a candidate
    with pytest.raises(CheckpointError, match=rf"^{tmp_path} already holds checkpoints: add --resume to continue it"):
        ckpt.resume_candidates(tmp_path, False)
    names = [p.name for p in ckpt.resume_candidates(tmp_path, True)]
    assert names == ["step_00000006", "step_00000004", "step_00000002"]  # newest first
    named = tmp_path / "checkpoints" / "step_00000004"
    assert ckpt.resume_candidates(tmp_path, str(named)) == [named]
    with pytest.raises(CheckpointError, match=r"^--resume: .*step_00000005 does not exist$"):
        ckpt.resume_candidates(tmp_path, str(tmp_path / "checkpoints" / "step_00000005"))
    with pytest.raises(CheckpointError, match=rf"^--resume: no checkpoint in {tmp_path / 'other' / 'checkpoints'}$"):
        ckpt.resume_candidates(tmp_path, str(tmp_path / "other"))


def test_check_same_architecture_names_every_differing_key() -> None:
    saved = {"recipe": {"type": "cgan"}, "models": {"generator": {"type": "dcgan", "z_dim": 100},
                                                    "discriminator": {"type": "dcgan", "dropout": 0.0}}}
    ckpt.check_same_architecture(saved, json.loads(json.dumps(saved)), Path("c"))  # equal: no error
    config = {"recipe": {"type": "acgan"}, "models": {"generator": {"type": "dcgan", "z_dim": 64, "embed_dim": 8},
                                                      "discriminator": {"type": "dcgan", "dropout": 0.0}}}
    with pytest.raises(CheckpointError) as e:
        ckpt.check_same_architecture(saved, config, Path("runs/a/checkpoints/step_00000010"))
    assert str(e.value) == ("runs/a/checkpoints/step_00000010: checkpoint was made with a different architecture; "
                            "differing keys: recipe, models.generator.embed_dim, models.generator.z_dim")


# ----------------------------------------------------------------------------- reading saved models
def test_read_saved_from_a_run_and_its_export(run: Path) -> None:
    for where in (run, run / "export"):
        saved = ckpt.read_saved(where)
        assert saved.path == run / "export" and saved.task == "digits" and saved.recipe["type"] == "cgan"
        assert sorted(saved.specs) == ["discriminator", "generator"] and saved.specs["generator"]["base_channels"] == 8
        assert saved.step == 4 and saved.meta["num_classes"] == 10 and saved.config["train"]["max_steps"] == 4
        for slot in ("generator", "discriminator"):
            file = ckpt.load_tensors(run / "export" / f"{slot}.safetensors")
            assert saved.weights[slot].keys() == file.keys()
            assert all(torch.equal(saved.weights[slot][k], file[k]) for k in file)


def test_read_saved_from_a_checkpoint_prefers_the_ema_weights(run: Path) -> None:
    step = run / "checkpoints" / "step_00000004"
    tensors = ckpt.load_tensors(step / "models.safetensors")
    ema = {f"ema.{k}": v + 1 for k, v in tensors.items() if k.startswith("generator.") and v.is_floating_point()}
    ckpt.save_tensors({**tensors, **ema}, step / "models.safetensors")
    saved = ckpt.read_saved(step)
    assert saved.path == step and saved.task == "digits" and saved.step == 0 and saved.meta == {}
    assert saved.weights["generator"].keys() == {k.removeprefix("ema.generator.") for k in ema}
    assert all(torch.equal(saved.weights["generator"][k.removeprefix("ema.generator.")], v) for k, v in ema.items())
    assert torch.equal(saved.weights["discriminator"]["adv.weight"], tensors["discriminator.adv.weight"])
    assert torch.equal(ckpt.load_slot_weights(step, "generator")["project.0.weight"], ema["ema.generator.project.0.weight"])


def test_read_saved_from_a_pretrained_folder(run: Path, tmp_path: Path) -> None:
    saved = ckpt.read_saved(run)
    info = json.loads((run / "export" / "config.json").read_text())
    folder = tmp_path / "pretrained"
    ckpt.write_pretrained(folder, saved.weights, info, "# card\n")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "discriminator", "generator"]
    assert json.loads((folder / "generator" / "config.json").read_text()) == info["models"]["generator"]
    assert json.loads((folder / "config.json").read_text())["format"] == "i2i-pretrained"
    again = ckpt.read_saved(folder)
    assert again.path == folder and again.task == "digits" and again.specs == saved.specs and again.step == 4
    for slot, sd in saved.weights.items():
        assert all(torch.equal(again.weights[slot][k], v) for k, v in sd.items()) and again.weights[slot].keys() == sd.keys()


def test_read_saved_refuses_what_is_not_a_saved_model(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=rf"^{tmp_path / 'nope'}: no such run, export or checkpoint directory$"):
        ckpt.read_saved(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=rf"^{tmp_path}: neither an export \(config.json\) nor a checkpoint"):
        ckpt.read_saved(tmp_path)


def test_build_network_loads_the_slot_and_refuses_a_missing_one(run: Path) -> None:
    saved = ckpt.read_saved(run)
    g = ckpt.build_network(saved, "generator")
    assert not g.training and type(g).__name__ == "DCGANGenerator"
    assert all(torch.equal(v, saved.weights["generator"][k]) for k, v in g.state_dict().items())
    with pytest.raises(CheckpointError, match=rf"^{run / 'export'}: no network 'critic' \(it has generator, discriminator\)$"):
        ckpt.build_network(saved, "critic")
    del saved.weights["discriminator"]
    with pytest.raises(CheckpointError, match=rf"^{run / 'export'}: no weights for discriminator$"):
        ckpt.build_network(saved, "discriminator")


def test_load_slot_weights_from_an_export_or_a_checkpoint(run: Path) -> None:
    export = ckpt.load_tensors(run / "export" / "discriminator.safetensors")
    got = ckpt.load_slot_weights(run, "discriminator")
    assert got.keys() == export.keys() and all(torch.equal(got[k], export[k]) for k in export)
    step2 = run / "checkpoints" / "step_00000002"
    raw = ckpt.sub_state(ckpt.load_tensors(step2 / "models.safetensors"), "generator")
    got = ckpt.load_slot_weights(step2, "generator")
    assert got.keys() == raw.keys() and all(torch.equal(got[k], raw[k]) for k in raw)
    with pytest.raises(CheckpointError, match=r"step_00000002: no critic weights \(expected critic.safetensors"):
        ckpt.load_slot_weights(step2, "critic")


def test_export_info_describes_the_slots() -> None:
    config = {"recipe": {"type": "cgan"}, "models": {"generator": {"type": "dcgan"}, "discriminator": {"type": "dcgan"}}}
    info = ckpt.export_info("digits", config, ["generator"], {"num_classes": 10}, 12, ["generator"])
    assert info == {"format": "i2i-export", "version": 1, "task": "digits", "recipe": {"type": "cgan"},
                    "models": {"generator": {"type": "dcgan"}}, "meta": {"num_classes": 10}, "step": 12, "ema": True,
                    "ema_slots": ["generator"], "config": config}
    assert ckpt.export_info("digits", config, [], {}, 0, [])["ema"] is False


# ----------------------------------------------------------------------------- the run lock
def test_a_lock_from_another_host_or_unreadable_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "train.lock"
    lock.write_text("123 another-host")
    with pytest.raises(CheckpointError, match=rf"^{lock}: this run directory is in use by process 123 on another-host; "
                                              r"choose another --output-dir \(or delete the lock"):
        ckpt.RunLock(tmp_path).acquire()
    lock.write_text("garbage")
    with pytest.raises(CheckpointError, match=r"in use by an unreadable lock"):
        ckpt.RunLock(tmp_path).acquire()
    lock.unlink()
    held = ckpt.RunLock(tmp_path)
    held.acquire()
    assert lock.read_text().split()[0] == str(os.getpid())
    held.release()
    assert not lock.exists()
