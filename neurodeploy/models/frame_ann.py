"""Frame-based ANNs on event data (Deng et al. 2020, Models 4 and 5; docs/frames.md).

:class:`FrameAnnNetwork` takes the binned event frames every other family reads, (N, P, H, W, T), turns them
into the frames of :mod:`neurodeploy.data.frames` inside ``forward`` (the same arithmetic, in torch) and
runs the bias-free ReLU ANN of :mod:`neurodeploy.models.ann` once per sample:

- ``binary`` (Model-4): a pixel is 1 when it saw an event in its bin; the T frames are unfolded into one
  (1, T, P*H*W) image, and every k x k convolution has stride 2 with floor(n / 2) outputs per side
  (:class:`StridedConv`, the arithmetic that reproduces Deng Table 6's Model-4 CNN counts, docs/cost.md).
- ``intensity`` (Model-5): the counts summed over T and divided by the sample's largest count, (P, H, W).

So a frame ANN trains in the same loop and runs on ``run --backend torch`` like the RNN / LSTM baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from neurodeploy.data.frames import FRAME_KINDS, frame_input_shape
from neurodeploy.errors import OptionError
from neurodeploy.models.ann import AnnNetwork
from neurodeploy.models.arch import Architecture, ConvLayer, Layer

BINARY_FRAMES_STRIDE = 2  # companion paper §4.1: conv stride 2 in Model-4 (binary frames), 1 elsewhere


@dataclass(frozen=True)
class StridedConv(ConvLayer):
    """A k x k 'same' convolution with stride ``stride`` and floor(n / stride) outputs per side: the outputs
    at positions stride - 1, 2 stride - 1, ... of the stride-1 convolution. This is the companion paper's
    arithmetic for Model-4 (Table 6); PyTorch gets it with padding 0 on the input padded by k // 2 - stride + 1
    rows / columns at the top / left and k // 2 at the bottom / right (k = 3, stride 2: 0 and 1; its
    symmetric padding 1 gives ceil(n / 2) instead), see :meth:`torch_padding`."""

    stride: int = BINARY_FRAMES_STRIDE

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, height, width = super().output_shape(in_shape)
        return (channels, height // self.stride, width // self.stride)

    def torch_padding(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) zero padding before an unpadded ``Conv2d(stride=stride)``."""
        before, after = self.kernel // 2 - self.stride + 1, self.kernel // 2
        if before < 0 or self.kernel % 2 == 0:
            raise OptionError(f"{self.token()} with stride {self.stride}: needs an odd kernel of at least "
                              f"2 x stride - 1 = {2 * self.stride - 1}")
        return (before, after, before, after)


def frame_layers(arch: Architecture, frames: str) -> tuple[Layer, ...]:
    """The layers an ANN on ``frames`` runs: binary frames make every convolution a :class:`StridedConv`."""
    if frames != "binary":
        return arch.layers
    return tuple(StridedConv(layer.channels, layer.kernel) if type(layer) is ConvLayer else layer
                 for layer in arch.layers)


def encode_frames(x: torch.Tensor, frames: str) -> torch.Tensor:
    """Binned frames (N, P, H, W, T) -> the ANN's input, as :func:`neurodeploy.data.frames.binary_frames` /
    :func:`~neurodeploy.data.frames.intensity_frames` compute it (float32): binary (N, 1, T, P*H*W) 0/1,
    intensity (N, P, H, W) in [0, 1] (a sample without events stays 0)."""
    if x.dim() != 5:
        raise OptionError(f"binned frames must be (N, P, H, W, T), got shape {tuple(x.shape)}")
    if frames == "binary":
        n, steps = x.shape[0], x.shape[-1]
        return (x.movedim(-1, 1).reshape(n, 1, steps, -1) > 0).to(torch.float32)
    if frames == "intensity":
        counts = x.to(torch.float32).sum(dim=-1)
        peak = counts.amax(dim=(1, 2, 3), keepdim=True)
        return torch.where(peak > 0, counts / peak.clamp_min(1e-12), torch.zeros_like(counts))
    raise OptionError(f"unknown --frames '{frames}'; choose one of {', '.join(FRAME_KINDS)}")


class FrameAnnNetwork(nn.Module):
    """``forward(x)``: binned frames (N, P, H, W, T) -> class scores (N, classes, 1); the ANN runs once per
    sample on the encoded frames. ``sensor_shape`` is (P, H, W), ``steps`` the T the frames hold."""

    def __init__(self, arch: Architecture, sensor_shape: tuple[int, int, int], frames: str, steps: int):
        super().__init__()
        self.frames, self.steps = frames, int(steps)
        self.sensor_shape = tuple(sensor_shape)
        self.input_shape = frame_input_shape(frames, self.sensor_shape, self.steps)
        self.ann = AnnNetwork(Architecture(frame_layers(arch, frames)), self.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ann(encode_frames(x, self.frames))
