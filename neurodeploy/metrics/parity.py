"""Float model vs chip backend on the same samples: accuracy (eq. 7) and spike-train agreement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import UserError


@dataclass(frozen=True)
class SpikeParity:
    """Float (SLAYER) model vs chip backend on the same samples.

    ``layer_count_agreement``: per layer, the fraction of (sample, neuron) pairs whose spike counts over the
    run are equal; ``first_divergence``: the first layer (in network order) whose spike trains differ, and
    the first step at which they do, or None when every spike of every layer is equal;
    ``prediction_agreement``: the fraction of samples both predict the same class for (eq. 7). Accuracies
    are None without labels.
    """

    float_accuracy: float | None
    chip_accuracy: float | None
    layer_count_agreement: list[float]
    identical: bool
    first_divergence: dict | None
    prediction_agreement: float | None = None


def compare_spikes(float_layers: list[np.ndarray], chip_layers: list[np.ndarray], labels: np.ndarray | None,
                   names: list[str] | None = None) -> SpikeParity:
    """Accuracies, per-layer spike-count agreement, the first (layer, step) where spike trains differ, and
    how often both sides predict the same class."""
    first = None
    agreement = []
    for index, (ours, chip) in enumerate(zip(float_layers, chip_layers)):
        if ours.shape != chip.shape:
            raise UserError(f"layer {index}: float model gives {ours.shape} spikes but the chip {chip.shape}; "
                            "the .net does not match the trained run")
        agreement.append(float((ours.sum(axis=2) == chip.sum(axis=2)).mean()))
        differs = ours != chip
        if first is None and differs.any():
            name = names[index] if names else f"L{index}"
            first = {"layer": name, "timestep": int(np.nonzero(differs.any(axis=(0, 1)))[0][0])}
    same = predictions_of(float_layers[-1]) == predictions_of(chip_layers[-1])
    return SpikeParity(
        float_accuracy=None if labels is None else accuracy_of(float_layers[-1], labels),
        chip_accuracy=None if labels is None else accuracy_of(chip_layers[-1], labels),
        layer_count_agreement=agreement,
        identical=first is None,
        first_divergence=first,
        prediction_agreement=float(same.mean()) if same.size else None,
    )


def predictions_of(output_spikes: np.ndarray) -> np.ndarray:
    """Eq. 7: argmax of the output spike count (ties to the lowest index, as torch.argmax)."""
    return output_spikes.sum(axis=2).argmax(axis=1)


def accuracy_of(output_spikes: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose predicted class (:func:`predictions_of`) is the label."""
    return float((predictions_of(output_spikes) == labels).mean())
