"""Class colour maps, shared by the segmentation datasets and the inference side (a model
without a stored class table is shown in these colours)."""
from __future__ import annotations

__all__ = ["pascal_palette"]


def pascal_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The VOC devkit colour map: the bits of the class index spread over R, G, B from the top."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out
