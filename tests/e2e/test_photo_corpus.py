"""datasets/build_photo_corpus.py on a fake wallpaper tree (no Debian packages needed)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "datasets" / "build_photo_corpus.py"


@pytest.fixture(scope="module")
def corpus():
    spec = importlib.util.spec_from_file_location("build_photo_corpus", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_tree(root: Path, corpus, names) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        p = root / corpus.PHOTOS[name][0]
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(p)


def _files(out: Path, split: str) -> list[str]:
    return sorted(p.name for p in (out / split).iterdir())


# The first corpus (23 photographs): the shipped models were trained on its train split, so no
# later version may move one of these to another split.
V1_VAL = {"mate_Dune", "mate_LadyBird", "kde_EveningGlow", "kde_Grey"}
V1_TRAIN = {"mate_Aqua", "mate_Blinds", "mate_FreshFlower", "mate_Garden", "mate_GreenMeadow", "mate_RainDrops",
            "mate_Storm", "mate_TwoWings", "mate_Wood", "mate_YellowFlower", "kde_BytheWater", "kde_ColdRipple",
            "kde_ColorfulCups", "kde_DarkestHour", "kde_FallenLeaf", "kde_Kite", "kde_OneStandsOut", "kde_Path",
            "kde_summer_1am"}


def test_allow_list_entries_are_complete(corpus):
    assert len(corpus.PHOTOS) >= 46  # at least twice the first corpus
    assert corpus.SPLITS == ("train", "val", "heldout")
    rels = set()
    for name, (rel, pkg, author, licence, split) in corpus.PHOTOS.items():
        assert pkg in corpus.PACKAGES, name
        assert licence.strip(), name
        assert author.strip(), name
        assert split in corpus.SPLITS, name
        assert not rel.startswith("/"), name
        assert not any(bad in licence.upper() for bad in ("-NC", "-ND")), name  # no non-commercial / no-derivatives
        rels.add(rel)
    assert len(rels) == len(corpus.PHOTOS)
    assert len({n.lower() for n in corpus.PHOTOS}) == len(corpus.PHOTOS)  # file names distinct on any file system
    # one size per KDE wallpaper: never two files of the same wallpaper folder
    kde = [r.split("/")[1] for r in rels if r.startswith("wallpapers/")]
    assert len(kde) == len(set(kde))
    split_of = {n: v[4] for n, v in corpus.PHOTOS.items()}
    assert {n for n in V1_TRAIN | V1_VAL if split_of.get(n) != ("val" if n in V1_VAL else "train")} == set()
    n = {s: sum(v == s for v in split_of.values()) for s in corpus.SPLITS}
    assert n == {"train": 37, "val": 7, "heldout": 5}


def test_build_layout_split_licences_idempotent(corpus, tmp_path, capsys):
    src, out = tmp_path / "share", tmp_path / "out"
    _fake_tree(src, corpus, corpus.PHOTOS)
    assert corpus.main(["--out", str(out), "--source-root", str(src)]) == 0
    want = {s: sorted(n + Path(v[0]).suffix for n, v in corpus.PHOTOS.items() if v[4] == s)
            for s in corpus.SPLITS}
    for s in corpus.SPLITS:
        assert _files(out, s) == want[s], s
    assert "train 37, val 7, heldout 5, total 49" in capsys.readouterr().out
    rows = json.loads((out / "licenses.json").read_text(encoding="utf-8"))
    assert len(rows) == len(corpus.PHOTOS) and all(r["licence"] and r["package"] for r in rows)
    md = (out / "LICENSES.md").read_text(encoding="utf-8")
    assert "val/kde_Grey.jpg" in md and "Risto Saukonpää" in md and "GPL-2+" in md
    assert "| heldout/lomiri_Kleiber.jpg | heldout | lomiri-wallpapers-20.04 |" in md and "CC-BY-SA-3.0" in md
    assert "| train/lomiri_seeding.jpg | train | lomiri-wallpapers-16.04 |" in md and "CC0-1.0" in md
    assert "| heldout/lxqt_flowers.png | heldout | lxqt-themes | /usr/share/lxqt/wallpapers/flowers.png |" in md
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert corpus.main(["--out", str(out), "--source-root", str(src)]) == 0
    assert all(_files(out, s) == want[s] for s in corpus.SPLITS)
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.parent.name in corpus.SPLITS}
    assert all(before[p] == t for p, t in after.items())  # images not rewritten


def test_corpus_version_1_is_the_first_corpus_and_folders_switch_both_ways(corpus, tmp_path, capsys):
    assert corpus.FIRST_VERSION == V1_TRAIN | V1_VAL
    src, out = tmp_path / "share", tmp_path / "out"
    _fake_tree(src, corpus, corpus.PHOTOS)
    v1 = {"train": sorted(n + ".jpg" for n in V1_TRAIN), "val": sorted(n + ".jpg" for n in V1_VAL), "heldout": []}
    for version, line in (("2", "train 37, val 7, heldout 5, total 49"), ("1", "train 19, val 4, heldout 0, total 23"),
                          ("2", "train 37, val 7, heldout 5, total 49"), ("1", "train 19, val 4, heldout 0, total 23")):
        assert corpus.main(["--out", str(out), "--source-root", str(src), "--corpus-version", version]) == 0
        assert line in capsys.readouterr().out
    assert {s: _files(out, s) for s in corpus.SPLITS} == v1
    rows = json.loads((out / "licenses.json").read_text(encoding="utf-8"))
    assert sorted(r["file"] for r in rows) == sorted(f"{s}/{f}" for s in v1 for f in v1[s])


def test_entry_moved_to_heldout_is_moved_not_copied(corpus, tmp_path, monkeypatch, capsys):
    src, out = tmp_path / "share", tmp_path / "out"
    names = ["lomiri_seeding", "lxqt_drop", "kde_Path"]
    _fake_tree(src, corpus, names)
    monkeypatch.setattr(corpus, "PHOTOS", {n: corpus.PHOTOS[n] for n in names})
    assert corpus.main(["--out", str(out), "--source-root", str(src)]) == 0
    assert _files(out, "train") == ["kde_Path.jpg", "lomiri_seeding.jpg", "lxqt_drop.png"]
    rel, pkg, author, licence, _split = corpus.PHOTOS["lxqt_drop"]
    monkeypatch.setitem(corpus.PHOTOS, "lxqt_drop", (rel, pkg, author, licence, "heldout"))
    assert corpus.main(["--out", str(out), "--source-root", str(src)]) == 0
    assert _files(out, "train") == ["kde_Path.jpg", "lomiri_seeding.jpg"]
    assert _files(out, "heldout") == ["lxqt_drop.png"] and _files(out, "val") == []
    assert "train 2, val 0, heldout 1, total 3" in capsys.readouterr().out.splitlines()[-1]


def test_missing_file_warns_and_rest_is_built(corpus, tmp_path, capsys):
    src, out = tmp_path / "share", tmp_path / "out"
    names = sorted(corpus.PHOTOS)
    _fake_tree(src, corpus, names[1:])
    assert corpus.main(["--out", str(out), "--source-root", str(src)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and corpus.PHOTOS[names[0]][0] in err
    built = [f for s in corpus.SPLITS for f in _files(out, s)]
    assert len(built) == len(names) - 1 and not any(b.startswith(names[0] + ".") for b in built)


def test_nothing_found_exits_2(corpus, tmp_path, capsys):
    assert corpus.main(["--out", str(tmp_path / "out"), "--source-root", str(tmp_path)]) == 2
    assert "error: none of the" in capsys.readouterr().err


def test_unfriendly_format_is_converted_to_png(corpus, tmp_path, monkeypatch):
    src, out = tmp_path / "share", tmp_path / "out"
    name = sorted(corpus.PHOTOS)[0]
    rel, *rest = corpus.PHOTOS[name]
    rel = str(Path(rel).with_suffix(".bmp"))
    monkeypatch.setattr(corpus, "PHOTOS", {name: (rel, *rest)})
    (src / rel).parent.mkdir(parents=True)
    Image.new("RGB", (10, 8), (1, 2, 3)).save(src / rel)
    assert corpus.main(["--out", str(out), "--source-root", str(src)]) == 0
    (png,) = (out / rest[3]).iterdir()
    assert png.name == name + ".png"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (10, 8)


def test_install_without_apt_is_one_line_error(corpus, monkeypatch, tmp_path):
    monkeypatch.setattr(corpus.shutil, "which", lambda _name: None)
    want = r"^error: --install needs apt-get \(Debian/Ubuntu\); install .*lomiri-wallpapers-16.04 .*lxqt-themes by"
    with pytest.raises(SystemExit, match=want):
        corpus.main(["--out", str(tmp_path), "--install"])


def test_install_runs_apt_for_the_packages_of_the_version(corpus, monkeypatch, tmp_path):
    calls = []

    def fake_run(cmd, **_kw):
        calls.append(cmd)
        return corpus.subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(corpus.shutil, "which", lambda _name: "/usr/bin/apt-get")
    monkeypatch.setattr(corpus.subprocess, "run", fake_run)
    corpus.install_packages()
    assert calls == [["apt-get", "update"], ["apt-get", "install", "-y", "mate-backgrounds", "plasma-workspace-wallpapers",
                     "ukui-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "lxqt-themes"]]
    calls.clear()
    assert corpus.main(["--out", str(tmp_path / "o"), "--install", "--corpus-version", "1",
                        "--source-root", str(tmp_path)]) == 2  # nothing found under the empty root
    assert calls[-1] == ["apt-get", "install", "-y", "mate-backgrounds", "plasma-workspace-wallpapers", "ukui-wallpapers"]
