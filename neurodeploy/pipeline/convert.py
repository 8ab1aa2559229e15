"""``neurodeploy convert RUN``: an ANN run (``train --model ann``) becomes an SNN run folder of IF neurons
(Deng et al. 2020, Model-2) that ``export``/``run`` treat like any trained SNN (docs/conversion.md).

Method: data-based weight normalisation (Diehl et al. 2015, "Fast-classifying, high-accuracy spiking deep
networks through weight and threshold balancing", IJCNN): for each layer l, lambda_l is the largest activation
the ANN reaches on the training images (``norm="max"``, Diehl's data-based normalisation), or the 99.9th
percentile of its non-zero activations (``norm="p99.9"``, the robust variant of Rueckauer et al. 2017), with
lambda_0 = 1 for the input (pixel intensities in [0, 1] are Bernoulli spike probabilities per step). Weights
become W_l lambda_{l-1} / lambda_l, so every layer's largest ANN activation maps to a firing rate of one spike
per step at threshold 1. On the chip every neuron is IF: current decay 4096 (the current is the step's input),
voltage decay 0 (no leak), reset to 0 at threshold. Per layer one scale theta_l maps threshold 1 and the
layer's weights onto the chip's 8-bit weights: theta_l = floor(254 / max |W'_l|) / 64, so the layer's largest
weight uses the full range (SLAYER units: weight w exported as 64 w, threshold theta as vThMant = 64 theta).
vThMant is made odd (one step lower when even): without leak a voltage is a sum of the even exported weights,
so it never equals the threshold, the one case where the chip (spike when v > threshold) and SLAYER's float
model (v >= threshold + eps, the eps lost in float32 at large thresholds) could differ.
An average-pooling layer (APk) is a layer of IF neurons too (Deng: each pooling unit an independent spiking
neuron): SLAYER's fixed pooling weight w on each of its k x k inputs and threshold k^2 w less one step, so
it fires at the mean rate of its inputs.

The accuracy-vs-window curve (:func:`window_curve`) runs the test images once for the longest window through
the SNN's bit-exact float reference (equal spike for spike to the emulator, :mod:`neurodeploy.backends.torch_float`)
and scores every shorter window T as the argmax of the output spikes in the first T steps: the Bernoulli
input of T steps is the first T steps of the longer run's (:mod:`neurodeploy.data.mnist`), so this is what a run
with ``--steps T`` gives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import uuid
from pathlib import Path

import numpy as np
import torch

from neurodeploy import atomic, folders, run_lock
from neurodeploy.backends.torch_float import float_layer_spikes
from neurodeploy.data.datasets import default_cache_dir, load_frames_array
from neurodeploy.deploy.export import ExportResult, export_run
from neurodeploy.deploy.run_folder import (
    CHECKPOINT,
    load_run_config,
    load_trained_network,
    make_run_dir,
    prepare_run_dir,
    save_checkpoint,
    write_config,
)
from neurodeploy.errors import UserError
from neurodeploy.models.snn import feedforward_synapse
from neurodeploy.models.training import SCHEMA_VERSION, TrainConfig, build_network, input_shape_of, resolve_data
from neurodeploy.pipeline.ann import accuracy, static_images

NORMS = ("max", "p99.9")
DEFAULT_NORM = "max"
DEFAULT_STEPS = 500  # Deng et al. Table 2: the converted SNN's (Model-2) window on MNIST
CONVERSION_FILE = "conversion.json"
CURVE_PLOT = "conversion_curve.png"
DEFAULT_WINDOWS = (5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000)
MAX_WEIGHT_UNITS = 254  # SLAYER's largest exported weight, 254 / 64
MAX_V_TH_MANT = 1 << 17  # vThMant << 6 must fit Lava's 24-bit voltage


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What :func:`convert` made: the SNN run folder, its export, the scales and the accuracy curve."""

    run_dir: Path
    export: ExportResult
    record: dict


def layer_scales(activations: list[torch.Tensor], norm: str) -> list[float]:
    """lambda_l per layer (module docstring) from each layer's activations on the normalisation images."""
    scales = []
    for act in activations:
        values = act.detach().reshape(-1).double()
        positive = values[values > 0]
        if positive.numel() == 0:
            raise UserError("a layer of the ANN is silent on every normalisation image (no positive activation); "
                            "it cannot be converted: train the ANN longer or check its data")
        scale = float(positive.max()) if norm == "max" else float(np.percentile(positive.numpy(), 99.9))
        scales.append(scale)
    return scales


def normalised_weights(ann, images: torch.Tensor, norm: str) -> tuple[list[torch.Tensor | None], list[float]]:
    """Diehl's data-based normalisation: per ANN layer its weights W_l lambda_{l-1} / lambda_l (None for an
    average pooling layer, which has no weights and keeps its input's scale), and the lambdas of the weighted
    layers."""
    ann.eval()
    with torch.no_grad():
        collected = [ann.activations(images[i:i + 500]) for i in range(0, len(images), 500)]
    weighted = [i for i, layer in enumerate(ann.layers) if hasattr(layer, "weight")]
    scales = layer_scales([torch.cat([batch[i] for batch in collected]) for i in weighted], norm)
    del collected
    lambdas = dict(zip(weighted, scales))
    previous, weights = 1.0, []
    for index, layer in enumerate(ann.layers):
        if index not in lambdas:
            weights.append(None)
            continue
        weights.append(layer.weight.detach().double() * previous / lambdas[index])
        previous = lambdas[index]
    return weights, scales


def chip_threshold(weight: torch.Tensor) -> float:
    """theta_l: the layer's largest normalised weight times theta_l is SLAYER's largest 8-bit weight."""
    largest = float(weight.abs().max())
    if largest <= 0 or not math.isfinite(largest):
        raise UserError("a layer of the ANN has weights all zero or not finite; it cannot be converted")
    mantissa = min(math.floor(MAX_WEIGHT_UNITS / largest), MAX_V_TH_MANT - 1)
    mantissa -= 1 - mantissa % 2  # odd: see the module docstring
    if mantissa < 1:
        raise UserError(f"a normalised weight is {largest:.3g} x the threshold, beyond the chip's 8-bit range; "
                        "this ANN cannot be converted")
    return mantissa / 64


def pool_threshold(block) -> float:
    """An average-pooling IF neuron: weight w per input, threshold k^2 w less one step, so that it fires at the
    mean rate of its k x k inputs (the chip spikes when v exceeds the threshold)."""
    weight = float(block.synapse.weight.detach().reshape(-1)[0])
    k = int(block.synapse.kernel_size[0])
    return (round(64 * k * k * weight) - 1) / 64


def snn_config(ann: TrainConfig, steps: int, thresholds: list[float]) -> TrainConfig:
    """The converted SNN's run settings: the ANN's data and architecture, IF neurons, the window ``steps``."""
    return TrainConfig(dataset=ann.dataset, family="snn", arch=ann.arch, epochs=ann.epochs, lr=ann.lr, dt_ms=1.0,
                       steps=steps, batch_size=ann.batch_size, micro_batch=ann.batch_size, limit=ann.limit,
                       test_limit=ann.test_limit, data_dir=ann.data_dir, allow_synthetic=ann.allow_synthetic,
                       seed=ann.seed, surrogate_width=0.25, leak=False, thresholds=thresholds)


def spiking_blocks(network) -> list:
    """The SNN's blocks with neurons (Flatten left out), one per ANN layer."""
    return [block for block in network.blocks if hasattr(block, "neuron")]


def convert(run_dir: Path, out: Path, *, steps: int, norm: str = DEFAULT_NORM, norm_limit: int | None = None,
            curve_samples: int | None = None, windows: tuple[int, ...] | None = None, console=None) -> Conversion:
    """Convert the ANN run ``run_dir`` into the SNN run ``out`` (written, exported to ``out/model.net``), with
    its accuracy-vs-window curve over ``curve_samples`` test images (default all) in ``conversion.json`` and
    ``conversion_curve.png``."""
    run_dir, out = Path(run_dir), Path(out)
    if norm not in NORMS:
        raise UserError(f"unknown --norm '{norm}'; choose one of {', '.join(NORMS)}")
    if not 1 <= steps <= 100_000:
        raise UserError(f"--steps {steps}: give a window of 1 to 100000 steps (Deng et al.: 500 on MNIST)")
    ann_config = load_run_config(run_dir)
    if ann_config.family != "ann":
        raise UserError(f"{run_dir}: a {ann_config.family} run; convert takes an ANN run made by "
                        "`neurodeploy train mnist --model ann`")
    if not (run_dir / CHECKPOINT).is_file():
        raise UserError(f"{run_dir}: no checkpoint; train the ANN first (neurodeploy train mnist --model ann)")
    if out.resolve() == run_dir.resolve():
        raise UserError(f"--out {out}: the converted SNN needs its own folder, not the ANN's")
    folders.check_output_dir(out, (folders.TRAIN_RUN,))
    if (out / CHECKPOINT).exists():
        raise UserError(f"{out}: already holds a trained run; choose another --out")
    _, model, ann = load_trained_network(run_dir)
    ann_config.resolved.pop("source_obj", None)
    resolve_data(ann_config)
    train_x, _ = static_images(ann_config, "train", norm_limit)
    weights, scales = normalised_weights(ann, train_x, norm)
    shape = input_shape_of(ann_config.resolved["sensor_size"])
    probe = build_network(snn_config(ann_config, steps, None), model, shape)
    blocks = spiking_blocks(probe)
    thresholds = [chip_threshold(w) if w is not None else pool_threshold(block) for w, block in zip(weights, blocks)]
    config = snn_config(ann_config, steps, thresholds)
    config.validate()
    config.resolved.update({key: value for key, value in ann_config.resolved.items()
                            if key.startswith("data_") or key in ("sensor_size", "num_classes", "source_obj")})
    config.resolved["run_id"] = uuid.uuid4().hex
    network = build_network(config, model, shape)
    with torch.no_grad():
        for block, weight, theta in zip(spiking_blocks(network), weights, thresholds):
            if weight is not None:
                synapse = feedforward_synapse(block)
                synapse.weight.copy_((weight * theta).reshape(synapse.weight.shape).float())
    record = {"method": "Diehl et al. 2015 data-based weight normalisation" if norm == "max" else
              "99.9th-percentile data-based normalisation (Rueckauer et al. 2017)", "norm": norm,
              "ann_run": str(run_dir), "ann_run_id": ann_config.resolved.get("run_id"),
              "normalisation_images": len(train_x), "layer_scales": scales, "thresholds_slayer": thresholds,
              "v_th_mant": [int(round(theta * 64)) for theta in thresholds],
              "neuron": "IF: current decay 4096, voltage decay 0, reset to 0",
              "input": "Bernoulli rate code, p = intensity / 255 per step", "steps": steps}
    config.resolved["conversion"] = dict(record)
    with contextlib.ExitStack() as stack:
        make_run_dir(out)
        stack.enter_context(run_lock.hold(out))
        prepare_run_dir(out)
        write_config(out, config, model)
        save_checkpoint(out, {"epoch": config.epochs - 1, "model": network.state_dict(), "metrics": [],
                              "schema_version": SCHEMA_VERSION})
        atomic.write_json(out / folders.TRAINING_DONE, {"run_id": config.resolved["run_id"], "epochs": config.epochs,
                                                       "epochs_run": 0, "converted_from": str(run_dir)})
    exported = export_run(out)
    curve = window_curve(out, windows=windows, samples=curve_samples, ann_run=run_dir)
    record["curve"] = curve
    atomic.write_json(out / CONVERSION_FILE, record)
    plot_curve(curve, out / CURVE_PLOT)
    return Conversion(out, exported, record)


def window_curve(snn_run: Path, *, windows: tuple[int, ...] | None = None, samples: int | None = None,
                 ann_run: Path | None = None) -> dict:
    """Test accuracy of the converted SNN ``snn_run`` at each window T (module docstring), beside the ANN's
    (``ann_run``) on the same test images. Windows default to :data:`DEFAULT_WINDOWS` up to the run's steps."""
    config, _, network = load_trained_network(Path(snn_run))
    steps = int(config.steps)
    windows = tuple(sorted({w for w in (windows or DEFAULT_WINDOWS) if 1 <= w <= steps} | ({steps} if not windows
                                                                                           else set())))
    if not windows:
        raise UserError(f"no window in 1..{steps} (the run's --steps)")
    longest = max(windows)
    source = resolve_data(config)
    frames, labels = load_frames_array(source, "test", config.dt_ms, longest, samples, config.seed,
                                       cache_dir=default_cache_dir())
    layers, path = float_layer_spikes(network, frames)
    counts = np.cumsum(layers[-1], axis=2)  # (N, classes, T): output spikes up to each step
    points = [{"steps": int(w), "accuracy": float((counts[:, :, w - 1].argmax(1) == labels).mean())}
              for w in windows]
    result = {"samples": int(len(labels)), "split": "test", "data_source": source.source,
              "data_synthetic_source": source.synthetic_source, "data_root": str(source.root),
              "scored_with": f"float reference ({path}), spike for spike equal to the emulator",
              "points": points}
    if ann_run is not None:
        ann_config, _, ann = load_trained_network(Path(ann_run))
        ann_config.resolved.pop("source_obj", None)
        test_x, test_y = static_images(ann_config, "test", samples)
        result["ann_accuracy"] = accuracy(ann, test_x, test_y)
        result["ann_samples"] = int(len(test_y))
    return result


def plot_curve(curve: dict, path: Path) -> Path:
    """Accuracy vs window (log x) with the ANN's accuracy as a line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = [p["steps"] for p in curve["points"]]
    acc = [100 * p["accuracy"] for p in curve["points"]]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(steps, acc, "o-", label="converted SNN (IF, bit-exact float reference)")
    if "ann_accuracy" in curve:
        axis.axhline(100 * curve["ann_accuracy"], color="gray", linestyle="--", label="ANN (float)")
    axis.set_xscale("log")
    axis.set_xlabel("window T (steps)")
    axis.set_ylabel("test accuracy (%)")
    source = curve.get("data_synthetic_source") or curve.get("data_source")
    axis.set_title(f"ANN->SNN conversion: accuracy vs window ({curve['samples']} test images, {source})", fontsize=9)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
    return path
