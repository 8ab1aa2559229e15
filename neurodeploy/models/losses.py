"""Losses and the prediction rule shared by every family (source paper).

All functions take the per-step outputs of a network, shape (N, classes, T): output spikes o[t] for the SNN,
readout scores W_y h[t] for the RNN/LSTM. Targets are one-hot (N, classes) or integer labels (N,).
Reference: "Comparing SNNs and RNNs on neuromorphic vision datasets: similarities and differences"
(He et al., Neural Networks 2020), eq. 7, 10, 11, 15.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _one_hot_like(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if outputs.dim() != 3:
        raise ValueError(f"outputs must be (N, classes, T), got shape {tuple(outputs.shape)}")
    if targets.dim() == 1:
        targets = functional.one_hot(targets.long(), outputs.shape[1])
    if targets.shape != outputs.shape[:2]:
        raise ValueError(f"targets {tuple(targets.shape)} do not match outputs {tuple(outputs.shape)}")
    return targets.to(outputs.dtype)


def loss_rate(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rate-coding loss, mean over the batch of ``|| Y - (1/T) sum_t out[t] ||^2``.

    For the SNN ``out[t]`` are output spikes o[t] (eq. 10); for the RNN/LSTM the readout W_y h[t] (eq. 15).
    """
    target = _one_hot_like(outputs, targets)
    return (target - outputs.mean(dim=2)).pow(2).sum(dim=1).mean()


def loss_last(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mainstream RNN/LSTM loss (eq. 11), mean over the batch of ``|| Y - W_y h[T] ||^2`` (last step only)."""
    target = _one_hot_like(outputs, targets)
    return (target - outputs[:, :, -1]).pow(2).sum(dim=1).mean()


def loss_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the last step's scores (a frame ANN's one output, (N, classes, 1)), mean over the batch."""
    target = _one_hot_like(outputs, targets)
    return functional.cross_entropy(outputs[:, :, -1], target)


def predict(outputs: torch.Tensor) -> torch.Tensor:
    """Predicted class per sample (eq. 7): ``argmax_k (1/T) sum_t out_k[t]``, shape (N,)."""
    return outputs.mean(dim=2).argmax(dim=1)


LOSSES: dict[str, Loss] = {"rate": loss_rate, "last": loss_last}

