"""Picture of one conv layer's spatial tiles (docs/chip_model.md): which core holds which output positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.metrics.placement import ConvShape, ConvTiling


def plot_conv_tiles(conv: ConvShape, tiling: ConvTiling, path: str | Path, title: str) -> Path:
    """Output positions (H x W) coloured by core, each core holding all ``tiling.channels`` channels of its
    tile; one tile's input window (the axons it needs) outlined on the input grid beside it."""
    import matplotlib  # plotting only here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    _, height, width = conv.out_shape
    rows, cols = np.indices((height, width))
    core = (rows // tiling.tile_h) * tiling.cols + cols // tiling.tile_w
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1]})
    left.imshow(core % 10, cmap="tab10", interpolation="nearest", aspect="auto")
    for r in range(tiling.rows):
        for c in range(tiling.cols):
            left.text(c * tiling.tile_w + tiling.tile_w / 2 - 0.5, r * tiling.tile_h + tiling.tile_h / 2 - 0.5,
                      str(r * tiling.cols + c), ha="center", va="center", fontsize=8)
    left.set_title(f"output {conv.out_shape[0]}x{height}x{width}: {tiling.cores} cores, tile "
                   f"{tiling.channels}x{tiling.tile_h}x{tiling.tile_w}", fontsize=9)
    left.set_xlabel("x (width)")
    left.set_ylabel("y (height)")
    _, in_h, in_w = conv.in_shape
    right.imshow(np.zeros((in_h, in_w)), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    row_in = conv.input_extent(tiling.tile_h, 0)
    col_in = conv.input_extent(tiling.tile_w, 1)
    right.add_patch(Rectangle((-0.5, -0.5), col_in, row_in, fill=True, alpha=0.4, color="tab:blue"))
    right.set_title(f"input {conv.in_shape[0]}x{in_h}x{in_w}: core 0 reads {row_in}x{col_in} pixels x "
                    f"{conv.in_shape[0]} channels = {tiling.axons_per_core} axons", fontsize=9)
    right.set_xlabel("x (width)")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
