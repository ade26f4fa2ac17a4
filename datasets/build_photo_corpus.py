#!/usr/bin/env python3
"""Build an offline photo corpus from photographs that Debian ships as desktop wallpapers.

    python datasets/build_photo_corpus.py --out ~/.cache/i2i/photos [--install] [--corpus-version 1]

Sources (Debian packages, see datasets/photos.md): ``mate-backgrounds`` (its ``nature/``
set), ``plasma-workspace-wallpapers``, ``ukui-wallpapers``, ``lomiri-wallpapers-16.04``,
``lomiri-wallpapers-20.04`` and ``lxqt-themes`` (its ``wallpapers/``). Those packages also hold
rendered artwork, abstract art and gradients; only the photographs named in ``PHOTOS`` below
(chosen by looking at every image) are used -- nothing decides "photo or art" at run time.
``ukui-wallpapers`` holds no photograph, so no entry names it; it is installed only because
the issue lists it as a source and a future package version may add photographs.

Output (``OUT``)::

    OUT/train/<name>.<ext>     37 photographs
    OUT/val/<name>.<ext>       7 photographs (validation during training: checkpoint choice)
    OUT/heldout/<name>.<ext>   5 photographs nothing trains or validates on (final evaluation)
    OUT/LICENSES.md            origin, author and licence of every file
    OUT/licenses.json          the same, machine-readable

The split of every file is fixed by name in PHOTOS and never changes; the 23 entries of the
first corpus (19 train, 4 val, the ``mate_``/``kde_`` names) keep theirs, since the shipped
models were trained on that train split; ``--corpus-version 1`` builds only those 23.

Files are copied at full resolution; a source in a format Pillow may not read everywhere
(WebP, AVIF, JPEG XL, ...) is converted to PNG. Re-running is idempotent: an up-to-date file is
left alone, and a file that the allow-list now puts in the other split is moved.

Exit status: 0 on success (missing sources only warn), 2 with ``error: ...`` when no
photograph was found or apt failed. Uses only the standard library and Pillow.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers", "ukui-wallpapers",
            "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "lxqt-themes")

# Licences as the packages record them. The MATE licence and authors are from
# /usr/share/doc/mate-backgrounds/copyright (per-file stanzas). The KDE ones are from each
# wallpaper's metadata.json ("License": "LGPLv3", "Authors"); Debian's copyright file for
# plasma-workspace-wallpapers states GPL-2+ for all files (KDE Visual Design Group), so both
# are recorded.
_MATE = "GPL-2+ (debian/copyright of mate-backgrounds)"
_KDE = "LGPL-3.0 (metadata.json); GPL-2+ per Debian copyright of plasma-workspace-wallpapers"
# Lomiri (Ubuntu Touch) wallpapers: per-file stanzas of /usr/share/doc/lomiri-wallpapers-16.04/copyright
# (the same file ships in lomiri-wallpapers-20.04), which also holds each licence's full text.
_LOM = " (debian/copyright of lomiri-wallpapers)"
# LXQt: /usr/share/lxqt/wallpapers/License puts the whole folder under CC-BY-SA-3.0 (copyright
# LXQt Project Team, credits stefonarch for eight of the photographs); Debian's copyright file
# for lxqt-themes gives LGPL-2.1+ for all files but kde-plasma.png, so both are recorded.
_LXQT = "CC-BY-SA-3.0 (wallpapers/License); LGPL-2.1+ per Debian copyright of lxqt-themes"
_STEF = "stefonarch (standreas@riseup.net)"

# name -> (path relative to /usr/share, package, author(s), licence, split)
# KDE wallpapers ship many sizes of one picture: only the largest (2560x1600) is listed.
PHOTOS: dict[str, tuple[str, str, str, str, str]] = {
    "mate_Aqua": ("backgrounds/mate/nature/Aqua.jpg", "mate-backgrounds",
                  "Charles Barbin (2008)", _MATE, "train"),
    "mate_Blinds": ("backgrounds/mate/nature/Blinds.jpg", "mate-backgrounds",
                    "Lennart Poettering, Andrea Cimitan (2008)", _MATE, "train"),
    "mate_Dune": ("backgrounds/mate/nature/Dune.jpg", "mate-backgrounds",
                  "Marco Cogoni (2007), Hylke Bons (2008)", _MATE, "val"),
    "mate_FreshFlower": ("backgrounds/mate/nature/FreshFlower.jpg", "mate-backgrounds",
                         "Jens Ansorg (2005)", _MATE, "train"),
    "mate_Garden": ("backgrounds/mate/nature/Garden.jpg", "mate-backgrounds",
                    "Charles Barbin (2008)", _MATE, "train"),
    "mate_GreenMeadow": ("backgrounds/mate/nature/GreenMeadow.jpg", "mate-backgrounds",
                         "Timothy Schellhase (2005), Lapo Calamandrei (2008)", _MATE, "train"),
    "mate_LadyBird": ("backgrounds/mate/nature/LadyBird.jpg", "mate-backgrounds",
                      "Charles Barbin (2008)", _MATE, "val"),
    "mate_RainDrops": ("backgrounds/mate/nature/RainDrops.jpg", "mate-backgrounds",
                       '"blackcombwhistler07" (2008)', _MATE, "train"),
    "mate_Storm": ("backgrounds/mate/nature/Storm.jpg", "mate-backgrounds",
                   "Sergey Nazarov (2008)", _MATE, "train"),
    "mate_TwoWings": ("backgrounds/mate/nature/TwoWings.jpg", "mate-backgrounds",
                      "Charles Barbin, Hylke Bons (2008)", _MATE, "train"),
    "mate_Wood": ("backgrounds/mate/nature/Wood.jpg", "mate-backgrounds",
                  "Jean-François Fortin Tam (2008)", _MATE, "train"),
    "mate_YellowFlower": ("backgrounds/mate/nature/YellowFlower.jpg", "mate-backgrounds",
                          "Charles Barbin (2008)", _MATE, "train"),
    "kde_BytheWater": ("wallpapers/BytheWater/contents/images/2560x1600.jpg",
                       "plasma-workspace-wallpapers", "Maciej Wiklo", _KDE, "train"),
    "kde_ColdRipple": ("wallpapers/ColdRipple/contents/images/2560x1600.jpg",
                       "plasma-workspace-wallpapers", "Risto Saukonpää", _KDE, "train"),
    "kde_ColorfulCups": ("wallpapers/ColorfulCups/contents/images/2560x1600.jpg",
                         "plasma-workspace-wallpapers", "Dmitri Popov", _KDE, "train"),
    "kde_DarkestHour": ("wallpapers/DarkestHour/contents/images/2560x1600.jpg",
                        "plasma-workspace-wallpapers", "Risto Saukonpää", _KDE, "train"),
    "kde_EveningGlow": ("wallpapers/EveningGlow/contents/images/2560x1600.jpg",
                        "plasma-workspace-wallpapers", "Ian Hex", _KDE, "val"),
    "kde_FallenLeaf": ("wallpapers/FallenLeaf/contents/images/2560x1600.jpg",
                       "plasma-workspace-wallpapers", "Martin Klapetek", _KDE, "train"),
    "kde_Grey": ("wallpapers/Grey/contents/images/2560x1600.jpg",
                 "plasma-workspace-wallpapers", "Sigi Sagi", _KDE, "val"),
    "kde_Kite": ("wallpapers/Kite/contents/images/2560x1600.jpg",
                 "plasma-workspace-wallpapers", "Risto Saukonpää", _KDE, "train"),
    "kde_OneStandsOut": ("wallpapers/OneStandsOut/contents/images/2560x1600.jpg",
                         "plasma-workspace-wallpapers", "Risto Saukonpää", _KDE, "train"),
    "kde_Path": ("wallpapers/Path/contents/images/2560x1600.jpg",
                 "plasma-workspace-wallpapers", "Risto Saukonpää", _KDE, "train"),
    "kde_summer_1am": ("wallpapers/summer_1am/contents/images/2560x1600.jpg",
                       "plasma-workspace-wallpapers", "Risto Saukonpää", _KDE, "train"),
    # --- added in corpus version 2 (lomiri-wallpapers-16.04/-20.04, lxqt-themes) ---
    "lomiri_Bridge": ("backgrounds/Bridge_by_Sander_Klootwijk.jpg", "lomiri-wallpapers-16.04",
                      "Sander Klootwijk (2018)", "CC-BY-SA-4.0" + _LOM, "train"),
    "lomiri_Dragonfly": ("backgrounds/Dragonfly_by_Bolly.jpg", "lomiri-wallpapers-16.04",
                         '"Bolly" (2018)', "CC-BY-SA-4.0" + _LOM, "train"),
    "lomiri_Picture_0B": ("backgrounds/Picture_0B_by_freespace.jpg", "lomiri-wallpapers-16.04",
                          'Trevor "Freespace" (2018)', "CC-BY-4.0" + _LOM, "val"),
    "lomiri_Picture_1A": ("backgrounds/Picture_1A_by_freespace.jpg", "lomiri-wallpapers-16.04",
                          'Trevor "Freespace" (2018)', "CC-BY-4.0" + _LOM, "heldout"),
    "lomiri_Wine": ("backgrounds/Wine_by_Jakkub_Mede.jpg", "lomiri-wallpapers-16.04",
                    "Jakub Mede (2018)", "CC-BY-4.0" + _LOM, "train"),
    "lomiri_aitzgorri": ("backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg", "lomiri-wallpapers-16.04",
                         "Aitzol Berasategi (2018)", "CC-BY-4.0" + _LOM, "train"),
    "lomiri_analogpattern": ("backgrounds/analogpattern_by_Peter_Nerlich.jpg", "lomiri-wallpapers-16.04",
                             "Peter Nerlich (2018)", "CC-BY-SA-4.0" + _LOM, "train"),
    "lomiri_free": ("backgrounds/free_by_Peter_Nerlich.jpg", "lomiri-wallpapers-16.04",
                    "Peter Nerlich (2018)", "CC-BY-SA-4.0" + _LOM, "train"),
    "lomiri_friends": ("backgrounds/friends_by_Aitzol_Berasategi.jpg", "lomiri-wallpapers-16.04",
                       "Aitzol Berasategi (2018)", "CC-BY-4.0" + _LOM, "heldout"),
    "lomiri_greentock": ("backgrounds/greentock_by_Peter_Nerlich.jpg", "lomiri-wallpapers-16.04",
                         "Peter Nerlich (2018)", "CC-BY-SA-4.0" + _LOM, "train"),
    "lomiri_life": ("backgrounds/life_by_Aitzol_Berasategi.jpg", "lomiri-wallpapers-16.04",
                    "Aitzol Berasategi (2018)", "CC-BY-4.0" + _LOM, "val"),
    "lomiri_picosdeeuropa": ("backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg", "lomiri-wallpapers-16.04",
                             "Aitzol Berasategi (2018)", "CC-BY-4.0" + _LOM, "heldout"),
    "lomiri_seeding": ("backgrounds/seeding_by_Clements_Engelhardt.jpg", "lomiri-wallpapers-16.04",
                       "Clemens Engelhardt (2018)", "CC0-1.0" + _LOM, "train"),
    "lomiri_sunset": ("backgrounds/sunset_by_Aitzol_Berasategi.jpg", "lomiri-wallpapers-16.04",
                      "Aitzol Berasategi (2018)", "CC-BY-4.0" + _LOM, "train"),
    "lomiri_Kleiber": ("backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "lomiri-wallpapers-20.04",
                       "Lukas Baubkus (2021)", "CC-BY-SA-3.0" + _LOM, "heldout"),
    "lxqt_Butterfly_Wimer": ("lxqt/wallpapers/Butterfly-Kenneth-Wimer.jpg", "lxqt-themes",
                             "Kenneth Wimer (named in the file name); LXQt Project Team", _LXQT, "train"),
    "lxqt_Valendas": ("lxqt/wallpapers/Valendas.png", "lxqt-themes",
                      "LXQt Project Team (photographer not named)", _LXQT, "train"),
    "lxqt_after_the_rain": ("lxqt/wallpapers/after-the-rain.jpg", "lxqt-themes", _STEF, _LXQT, "train"),
    "lxqt_appleflower": ("lxqt/wallpapers/appleflower.png", "lxqt-themes", _STEF, _LXQT, "train"),
    "lxqt_beam": ("lxqt/wallpapers/beam.png", "lxqt-themes", _STEF, _LXQT, "train"),
    "lxqt_butterfly": ("lxqt/wallpapers/butterfly.png", "lxqt-themes", _STEF, _LXQT, "val"),
    "lxqt_cloud": ("lxqt/wallpapers/cloud.png", "lxqt-themes",
                   "LXQt Project Team (photographer not named)", _LXQT, "train"),
    "lxqt_drop": ("lxqt/wallpapers/drop.png", "lxqt-themes", _STEF, _LXQT, "train"),
    "lxqt_flowers": ("lxqt/wallpapers/flowers.png", "lxqt-themes", _STEF, _LXQT, "heldout"),
    "lxqt_fog": ("lxqt/wallpapers/fog.jpg", "lxqt-themes", _STEF, _LXQT, "train"),
    "lxqt_this_is_not_windows": ("lxqt/wallpapers/this-is-not-windows.jpg", "lxqt-themes",
                                 _STEF, _LXQT, "train"),
}

# Corpus version 1: the 23 entries that the shipped srresnet_x4 / pix2pix models were trained
# and validated on (--corpus-version 1 rebuilds exactly that corpus, to reproduce them).
FIRST_VERSION = frozenset(n for n in PHOTOS if n.startswith(("mate_", "kde_")))
FIRST_PACKAGES = PACKAGES[:3]

SPLITS = ("train", "val", "heldout")
COPY_EXTS = {".jpg", ".jpeg", ".png"}  # everything else is converted to PNG


def install_packages(packages: tuple[str, ...] = PACKAGES) -> None:
    """apt-get update + install the wallpaper packages; SystemExit(2) with one line on failure."""
    if shutil.which("apt-get") is None:
        raise SystemExit("error: --install needs apt-get (Debian/Ubuntu); install "
                         + " ".join(packages) + " by other means")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        try:
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        except OSError as e:
            raise SystemExit(f"error: {' '.join(cmd)} could not run: {e}") from None
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise SystemExit(f"error: {' '.join(cmd)} failed (exit {r.returncode}): {last}")


def _dest_name(name: str, src: Path) -> str:
    ext = src.suffix.lower()
    return name + (ext if ext in COPY_EXTS else ".png")


def _up_to_date(src: Path, dst: Path, convert: bool) -> bool:
    if not dst.is_file():
        return False
    if convert:
        return dst.stat().st_mtime >= src.stat().st_mtime
    return dst.stat().st_size == src.stat().st_size


def _place(src: Path, dst: Path) -> None:
    tmp = dst.with_name("." + dst.name + ".tmp")
    if src.suffix.lower() in COPY_EXTS:
        shutil.copyfile(src, tmp)
    else:
        from PIL import Image
        with Image.open(src) as im:
            im.convert("RGB").save(tmp, format="PNG")
    os.replace(tmp, dst)


def _licences_md(rows: list[dict]) -> str:
    lines = ["# Licences of the photo corpus", "",
             "Built by datasets/build_photo_corpus.py from Debian wallpaper packages. "
             "Each file keeps the licence of its source.", "",
             "| file | split | package | source path | author | licence |",
             "|------|-------|---------|-------------|--------|---------|"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['split']} | {r['package']} | /usr/share/{r['source']} "
                     f"| {r['author']} | {r['licence']} |")
    texts = ("Licence texts: /usr/share/common-licenses/ (GPL-2, LGPL-2.1, LGPL-3, CC0-1.0) and "
             "/usr/share/doc/<package>/copyright (the full CC-BY-4.0, CC-BY-SA-3.0 and CC-BY-SA-4.0 texts).")
    terms = ("CC-BY and CC-BY-SA files: credit the author as given here; CC-BY-SA and (L)GPL files: "
             "share the images and their adaptations under the same licence.")
    lines += ["", texts, terms, ""]
    return "\n".join(lines)


def build(out: Path, source_root: Path, corpus_version: int = 2) -> tuple[dict[str, int], list[str]]:
    """Build the corpus; returns (count per split, missing source paths).

    ``corpus_version=1`` takes only the FIRST_VERSION entries and removes the files of the
    other entries from ``out`` (so one folder can switch between versions).
    """
    for s in SPLITS:
        (out / s).mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(SPLITS, 0)
    missing: list[str] = []
    rows: list[dict] = []
    for name in sorted(PHOTOS):
        rel, pkg, author, licence, split = PHOTOS[name]
        if corpus_version == 1 and name not in FIRST_VERSION:
            for s in SPLITS:
                (out / s / _dest_name(name, Path(rel))).unlink(missing_ok=True)
            continue
        src = source_root / rel
        if not src.is_file():
            missing.append(str(src))
            print(f"warning: {src} not found ({pkg} not installed?); skipping {name}",
                  file=sys.stderr)
            continue
        fname = _dest_name(name, src)
        dst = out / split / fname
        for other in SPLITS:  # an entry that changed split must not stay in both
            stale = out / other / fname
            if other != split and stale.exists():
                stale.unlink()
        if not _up_to_date(src, dst, src.suffix.lower() not in COPY_EXTS):
            _place(src, dst)
        counts[split] += 1
        rows.append({"file": f"{split}/{fname}", "split": split, "package": pkg, "source": rel,
                     "author": author, "licence": licence})
    if rows:
        (out / "LICENSES.md").write_text(_licences_md(rows), encoding="utf-8")
        (out / "licenses.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    return counts, missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder (train/, val/, heldout/ inside)")
    ap.add_argument("--install", action="store_true",
                    help="apt-get update && apt-get install -y " + " ".join(PACKAGES))
    ap.add_argument("--source-root", type=Path, default=Path("/usr/share"),
                    help="prefix that replaces /usr/share in the source paths (tests)")
    ap.add_argument("--corpus-version", type=int, choices=(1, 2), default=2,
                    help="1: only the 23 photographs the shipped models were trained on (19 train, 4 val); "
                         "2 (default): all 49")
    args = ap.parse_args(argv)
    packages = FIRST_PACKAGES if args.corpus_version == 1 else PACKAGES
    if args.install:
        install_packages(packages)
    out = args.out.expanduser()
    counts, missing = build(out, args.source_root, args.corpus_version)
    total = sum(counts.values())
    if total == 0:
        n_listed = len(FIRST_VERSION) if args.corpus_version == 1 else len(PHOTOS)
        print(f"error: none of the {n_listed} listed photographs was found under "
              f"{args.source_root}; install {' '.join(packages)} (or pass --install)",
              file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for s in SPLITS for p in (out / s).iterdir() if p.is_file())
    print(f"{out}: train {counts['train']}, val {counts['val']}, heldout {counts['heldout']}, "
          f"total {total} photographs ({size / 2**20:.1f} MiB); {len(missing)} missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
