"""Architectures in the papers' notation, and the model files in ``models/`` that hold them.

Notation (Comparing SNNs and RNNs on neuromorphic vision datasets, and its companion paper):
``nFC`` dense layer of n neurons, ``nC3`` 3x3 convolution with n maps (padding 1, stride 1), ``MPk``
max pool k x k, ``APk`` average pool k x k, and a bare trailing number for the output layer (dense).
Example: ``Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11``. Shapes are (C, H, W) throughout.

``nCLk`` (RSNN family only, docs/rsnn.md) is a ConvLSTM layer of n maps with a k x k input convolution, run
on the host in front of a spiking classifier: ``Input-MP4-16CL3-AP2-64C3-AP2-11``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from neurodeploy import options
from neurodeploy.errors import UserError
from neurodeploy.safe_files import load_yaml

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

# largest sizes a layer token may ask for (far above what fits a Loihi 2 board, below integer overflow)
LAYER_LIMITS = {"dense": {"units": 1_000_000}, "conv": {"channels": 65_536, "kernel": 31},
                "pool": {"size": 1024}, "convlstm": {"channels": 65_536, "kernel": 31}}
MAX_ARCH_CHARS = 2000
_DENSE = re.compile(r"^(\d+)(?:FC)?$")
_CONV = re.compile(r"^(\d+)C(\d+)$")
_POOL = re.compile(r"^(MP|AP)(\d+)$")
_CONVLSTM = re.compile(r"^(\d+)CL(\d+)$")


@dataclass(frozen=True)
class DenseLayer:
    """Fully connected layer of ``units`` neurons."""

    units: int
    kind: str = "dense"

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.units,)

    def token(self) -> str:
        return f"{self.units}FC"


@dataclass(frozen=True)
class ConvLayer:
    """k x k convolution with ``channels`` maps, stride 1, 'same' padding k // 2."""

    channels: int
    kernel: int = 3
    kind: str = "conv"

    @property
    def padding(self) -> int:
        return self.kernel // 2

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, h, w = _require_image(in_shape, self.token())
        pad = self.padding
        return (self.channels, h + 2 * pad - self.kernel + 1, w + 2 * pad - self.kernel + 1)

    def token(self) -> str:
        return f"{self.channels}C{self.kernel}"


@dataclass(frozen=True)
class PoolLayer:
    """Non-overlapping k x k pooling; ``mode`` is 'max' or 'avg'."""

    size: int
    mode: str = "max"
    kind: str = "pool"

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = _require_image(in_shape, self.token())
        return (c, h // self.size, w // self.size)

    def token(self) -> str:
        return f"{'MP' if self.mode == 'max' else 'AP'}{self.size}"


@dataclass(frozen=True)
class ConvLSTMLayer(ConvLayer):
    """ConvLSTM of ``channels`` maps: k x k input convolution, 3 x 3 hidden-state convolution, 'same' padding
    (:class:`neurodeploy.models.recurrent.ConvLSTM`); the host front end of an RSNN."""

    kind: str = "convlstm"

    def token(self) -> str:
        return f"{self.channels}CL{self.kernel}"


Layer = DenseLayer | ConvLayer | PoolLayer | ConvLSTMLayer


def _require_image(in_shape: tuple[int, ...], token: str) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise UserError(f"layer {token} needs an image input (C, H, W) but follows a flat layer {in_shape}")
    return in_shape  # type: ignore[return-value]


@dataclass(frozen=True)
class Architecture:
    """A parsed architecture string; the last layer is the (dense) output layer."""

    layers: tuple[Layer, ...]

    def __post_init__(self):
        if not self.layers:
            raise UserError("architecture has no layers; write e.g. 'Input-512FC-10'")
        if not isinstance(self.layers[-1], DenseLayer):
            raise UserError("the last layer of an architecture must be dense (the class outputs), e.g. '-10'")

    @property
    def num_classes(self) -> int:
        return self.layers[-1].units

    @property
    def has_convlstm(self) -> bool:
        return any(isinstance(layer, ConvLSTMLayer) for layer in self.layers)

    @property
    def is_convolutional(self) -> bool:
        return any(not isinstance(layer, DenseLayer) for layer in self.layers)

    def notation(self) -> str:
        tokens = [layer.token() for layer in self.layers]
        tokens[-1] = str(self.layers[-1].units)
        return "-".join(["Input", *tokens])

    def shapes(self, input_shape: tuple[int, int, int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(input shape, output shape) of every layer, for an input of shape (C, H, W)."""
        result = []
        shape: tuple[int, ...] = tuple(input_shape)
        for layer in self.layers:
            out = layer.output_shape(shape)
            if min(out) < 1:
                raise UserError(
                    f"layer {layer.token()} of {self.notation()} gets input {shape} and would be empty; "
                    "use a larger input or fewer pooling layers"
                )
            result.append((shape, out))
            shape = out
        return result


def parse_architecture(text: str) -> Architecture:
    """Parse the papers' notation, e.g. ``Input-MP4-64C3-128C3-AP2-256FC-11``."""
    if len(text) > MAX_ARCH_CHARS:
        raise UserError(f"architecture string of {len(text)} characters (limit {MAX_ARCH_CHARS}); write fewer layers")
    tokens = [t.strip() for t in text.strip().split("-") if t.strip()]
    if tokens and tokens[0].lower() == "input":
        tokens = tokens[1:]
    layers: list[Layer] = []
    for token in tokens:
        upper = token.upper()
        if match := _DENSE.match(upper):
            layers.append(DenseLayer(int(match.group(1))))
        elif match := _CONV.match(upper):
            layers.append(ConvLayer(int(match.group(1)), int(match.group(2))))
        elif match := _CONVLSTM.match(upper):
            layers.append(ConvLSTMLayer(int(match.group(1)), int(match.group(2))))
        elif match := _POOL.match(upper):
            layers.append(PoolLayer(int(match.group(2)), "max" if match.group(1) == "MP" else "avg"))
        else:
            raise UserError(
                f"cannot parse '{token}' in architecture '{text}'; use nFC, nC3, nCL3, MPk, APk or a trailing number"
            )
    for layer in layers:
        if any(v < 1 for v in vars(layer).values() if isinstance(v, int)):
            raise UserError(f"layer {layer.token()} in '{text}' has a zero size")
        limits = LAYER_LIMITS[layer.kind]
        for name, value in vars(layer).items():
            if name in limits and value > limits[name]:
                raise UserError(f"layer {layer.token()} in '{text}': {name} {value} is above the limit "
                                f"{limits[name]}; use a smaller layer")
    return Architecture(tuple(layers))


@dataclass(frozen=True)
class DatasetDefaults:
    """Per-dataset training defaults stored in a model file (paper Table IV)."""

    dt_ms: float
    steps: int
    batch_size: int
    micro_batch: int | None = None  # samples per forward/backward pass; gradients accumulate to batch_size


@dataclass(frozen=True)
class ModelFile:
    """A ``models/*.yaml`` file: a name, an architecture and per-dataset defaults."""

    name: str
    arch: Architecture
    datasets: dict[str, DatasetDefaults] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None


def load_model_file(path: Path) -> ModelFile:
    """Read and validate one model file."""
    raw = load_yaml(path, "model file", "fix the YAML or pick another --arch")
    if not isinstance(raw, dict) or not isinstance(raw.get("arch"), str):
        raise UserError(f"{path}: a model file needs an 'arch' key with the architecture string")
    unknown = set(raw) - {"name", "arch", "description", "datasets"}
    if unknown:
        raise UserError(f"{path}: unknown keys {sorted(map(str, unknown))}; a model file has name, arch, "
                        "description, datasets")
    for key in ("name", "description"):
        if not isinstance(raw.get(key, ""), str):
            raise UserError(f"{path}: '{key}' must be a string; fix the model file")
    datasets = raw.get("datasets") or {}
    if not isinstance(datasets, dict):
        raise UserError(f"{path}: 'datasets' must map a dataset name to dt_ms, steps, batch_size; fix the model file")
    try:
        arch = parse_architecture(raw["arch"])
        defaults = {str(name): _dataset_defaults(entry) for name, entry in datasets.items()}
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc
    return ModelFile(name=raw.get("name", Path(path).stem), arch=arch, datasets=defaults,
                     description=raw.get("description", ""), path=Path(path))


def _dataset_defaults(entry) -> DatasetDefaults:
    """One ``datasets.<name>`` entry of a model file, type- and range-checked (``micro_batch`` optional)."""
    keys = ("dt_ms", "steps", "batch_size")
    if not isinstance(entry, dict) or not set(keys) <= set(entry) <= {*keys, "micro_batch"}:
        raise UserError("each datasets entry needs exactly dt_ms, steps and batch_size (and optionally "
                        "micro_batch); fix the model file")
    dt_ms, steps, batch_size = (entry[key] for key in keys)
    micro_batch = entry.get("micro_batch")
    if isinstance(dt_ms, bool) or not isinstance(dt_ms, (int, float)) or any(
            isinstance(v, bool) or not isinstance(v, int) for v in (steps, batch_size)) or (
            micro_batch is not None and (isinstance(micro_batch, bool) or not isinstance(micro_batch, int))):
        raise UserError("datasets entries: dt_ms is a number, steps, batch_size and micro_batch whole numbers; "
                        "fix the model file")
    options.check_binning(float(dt_ms), steps)
    options.check("--batch-size", batch_size)
    options.check("--micro-batch", micro_batch)
    return DatasetDefaults(float(dt_ms), steps, batch_size, micro_batch)


def available_models() -> dict[str, Path]:
    """Model files shipped in ``models/``, by stem."""
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.yaml"))}


def resolve_arch(spec: str, dataset: str) -> ModelFile:
    """``--arch`` value: a model file name (``nmnist_mlp``, ``mlp`` for this dataset), a path, or a string."""
    models = available_models()
    candidates = [spec, f"{dataset}_{spec}"]
    for name in candidates:
        if name in models:
            return load_model_file(models[name])
    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise UserError(f"{path}: model file not found; known models: {', '.join(models)}")
        return load_model_file(path)
    if "-" not in spec and not spec[:1].isdigit():
        raise UserError(f"unknown architecture '{spec}'; known models: {', '.join(models)}, or a string like "
                        "'Input-512FC-10'")
    return ModelFile(name=spec, arch=parse_architecture(spec))
