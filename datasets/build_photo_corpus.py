#!/usr/bin/env python3
"""Build an offline photo corpus from photographs that Debian ships as desktop wallpapers.

    python datasets/build_photo_corpus.py --out ~/.cache/i2i/photos [--install]

Sources (Debian packages, see datasets/photos.md): ``mate-backgrounds`` (its ``nature/``
set), ``plasma-workspace-wallpapers`` and ``ukui-wallpapers``. Those packages also hold
rendered artwork, abstract art and gradients; only the photographs named in ``PHOTOS`` below
(chosen by looking at every image) are used -- nothing decides "photo or art" at run time.
``ukui-wallpapers`` holds no photograph, so no entry names it; it is installed only because
the issue lists it as a source and a future package version may add photographs.

Output (``OUT``)::

    OUT/train/<name>.<ext>   19 photographs
    OUT/val/<name>.<ext>     4 photographs (fixed by name in PHOTOS, never changes)
    OUT/LICENSES.md          origin, author and licence of every file
    OUT/licenses.json        the same, machine-readable

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

PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers", "ukui-wallpapers")

# Licences as the packages record them. The MATE licence and authors are from
# /usr/share/doc/mate-backgrounds/copyright (per-file stanzas). The KDE ones are from each
# wallpaper's metadata.json ("License": "LGPLv3", "Authors"); Debian's copyright file for
# plasma-workspace-wallpapers states GPL-2+ for all files (KDE Visual Design Group), so both
# are recorded.
_MATE = "GPL-2+ (debian/copyright of mate-backgrounds)"
_KDE = "LGPL-3.0 (metadata.json); GPL-2+ per Debian copyright of plasma-workspace-wallpapers"

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
}

SPLITS = ("train", "val")
COPY_EXTS = {".jpg", ".jpeg", ".png"}  # everything else is converted to PNG


def install_packages() -> None:
    """apt-get update + install the three packages; SystemExit(2) with one line on failure."""
    if shutil.which("apt-get") is None:
        raise SystemExit("error: --install needs apt-get (Debian/Ubuntu); install "
                         + " ".join(PACKAGES) + " by other means")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *PACKAGES]):
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
    lines += ["", "Licence texts: /usr/share/common-licenses/GPL-2, /usr/share/common-licenses/LGPL-3 "
              "and /usr/share/doc/<package>/copyright.", ""]
    return "\n".join(lines)


def build(out: Path, source_root: Path) -> tuple[dict[str, int], list[str]]:
    """Build the corpus; returns (count per split, missing source paths)."""
    for s in SPLITS:
        (out / s).mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(SPLITS, 0)
    missing: list[str] = []
    rows: list[dict] = []
    for name in sorted(PHOTOS):
        rel, pkg, author, licence, split = PHOTOS[name]
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
    ap.add_argument("--out", required=True, type=Path, help="output folder (train/, val/ inside)")
    ap.add_argument("--install", action="store_true",
                    help="apt-get update && apt-get install -y " + " ".join(PACKAGES))
    ap.add_argument("--source-root", type=Path, default=Path("/usr/share"),
                    help="prefix that replaces /usr/share in the source paths (tests)")
    args = ap.parse_args(argv)
    if args.install:
        install_packages()
    out = args.out.expanduser()
    counts, missing = build(out, args.source_root)
    total = sum(counts.values())
    if total == 0:
        print(f"error: none of the {len(PHOTOS)} listed photographs was found under "
              f"{args.source_root}; install {' '.join(PACKAGES)} (or pass --install)",
              file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for s in SPLITS for p in (out / s).iterdir() if p.is_file())
    print(f"{out}: train {counts['train']}, val {counts['val']}, total {total} photographs "
          f"({size / 2**20:.1f} MiB); {len(missing)} missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
