"""Float model vs chip backend on the same samples: accuracy (eq. 7) and spike agreement, from full spike
trains or from the counts a backend kept (:class:`~neurodeploy.metrics.activity.LayerActivity`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.metrics.activity import LayerActivity, count_over_time


@dataclass(frozen=True)
class SpikeParity:
    """Float (SLAYER) model vs chip backend on the same samples.

    ``layer_count_agreement``: per layer, the fraction of (sample, neuron) pairs whose spike counts over the
    run are equal; ``first_divergence``: the first layer (in network order) whose spikes differ, and the
    first step at which they do, or None when every layer is equal. A layer the chip backend only counted
    (:class:`~neurodeploy.metrics.activity.LayerActivity`) is compared by its counts per neuron and per step
    and its first sample's trains; a recorded layer spike for spike. ``prediction_agreement``: the fraction
    of samples both predict the same class for (eq. 7). Accuracies are None without labels.
    """

    float_accuracy: float | None
    chip_accuracy: float | None
    layer_count_agreement: list[float]
    identical: bool
    first_divergence: dict | None
    prediction_agreement: float | None = None


def _first_difference(ours: np.ndarray, chip: np.ndarray | LayerActivity) -> tuple[float, int | None]:
    """(count agreement, first differing step or None) of one layer."""
    if isinstance(chip, LayerActivity):
        mine = LayerActivity.of(ours)
        agreement = float((mine.per_neuron == chip.per_neuron).mean())
        steps = np.nonzero((mine.per_step != chip.per_step).any(axis=0) | (mine.first != chip.first).any(axis=0))[0]
        if not len(steps) and not np.array_equal(mine.per_neuron, chip.per_neuron):
            steps = np.array([0])  # cannot happen with equal per-step totals of 0/1 spikes, but never hide it
        return agreement, int(steps[0]) if len(steps) else None
    agreement = float((count_over_time(ours) == count_over_time(chip)).mean())
    steps = np.nonzero((ours != chip).any(axis=(0, 1)))[0]
    return agreement, int(steps[0]) if len(steps) else None


def compare_spikes(float_layers: list[np.ndarray], chip_layers: list[np.ndarray | LayerActivity],
                   labels: np.ndarray | None, names: list[str] | None = None) -> SpikeParity:
    """Accuracies, per-layer spike-count agreement, the first (layer, step) where spikes differ, and how
    often both sides predict the same class."""
    first = None
    agreement = []
    for index, (ours, chip) in enumerate(zip(float_layers, chip_layers)):
        neurons = chip.per_neuron.shape if isinstance(chip, LayerActivity) else chip.shape[:2]
        if ours.shape[:2] != neurons:
            raise UserError(f"layer {index}: float model gives {ours.shape} spikes but the chip {neurons}; "
                            "the .net does not match the trained run")
        fraction, step = _first_difference(ours, chip)
        agreement.append(fraction)
        if first is None and step is not None:
            first = {"layer": names[index] if names else f"L{index}", "timestep": step}
    output = chip_layers[-1]
    float_counts = count_over_time(float_layers[-1])
    chip_counts = output.per_neuron if isinstance(output, LayerActivity) else count_over_time(output)
    same = predictions_of(float_counts) == predictions_of(chip_counts)
    return SpikeParity(
        float_accuracy=None if labels is None else accuracy_of(float_counts, labels),
        chip_accuracy=None if labels is None else accuracy_of(chip_counts, labels),
        layer_count_agreement=agreement,
        identical=first is None,
        first_divergence=first,
        prediction_agreement=float(same.mean()) if same.size else None,
    )


def predictions_of(output_counts: np.ndarray) -> np.ndarray:
    """Eq. 7: argmax of the output spike counts (N, classes) (ties to the lowest index, as torch.argmax)."""
    return output_counts.argmax(axis=1)


def accuracy_of(output_counts: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose predicted class (:func:`predictions_of`) is the label; ``output_counts``
    (N, classes) are the output layer's spikes summed over time (:func:`count_over_time`)."""
    return float((predictions_of(output_counts) == labels).mean())
