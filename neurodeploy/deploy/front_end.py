"""An RSNN's host part as deployed: ``front_end.pt`` (the ConvLSTM front end's weights) and the boundary it
feeds the chip through (docs/rsnn.md).

``front_end.pt`` holds only tensors and plain values: ``{"front": state_dict, "checkpoint_sha256", "run_id",
"arch", "aggregation", "steps", "input_shape", "schema_version"}``; it is read with
``torch.load(weights_only=True)`` (:func:`neurodeploy.deploy.run_folder.load_torch_state`), so a crafted file
cannot run code, and it is refused unless it was exported from the run's current checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from neurodeploy.deploy.run_folder import SCHEMA_VERSION, checkpoint_sha256, load_torch_state, save_torch_state
from neurodeploy.errors import UserError

FRONT_END_FILE = "front_end.pt"


@dataclass(frozen=True)
class Boundary:
    """How the front end's continuous output enters the chip, per sample.

    ``values``: aggregated front-end outputs (C' x H x W), each sent as an integer level L in [0, T]
    (``bytes_per_sample``: 1 byte per level for T <= 255, else 2); on the chip they arrive as L binary spikes
    over T steps (count encoding, :func:`neurodeploy.models.rsnn.count_spikes`).
    """

    aggregation: str
    shape: tuple[int, int, int]
    steps: int
    encoding: str = "count"

    @property
    def values(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def bytes_per_sample(self) -> int:
        return self.values * (1 if self.steps <= 255 else 2)

    def describe(self) -> str:
        return (f"boundary: {self.aggregation} of the front end's {self.steps} steps -> {self.values} values "
                f"({'x'.join(map(str, self.shape))}) clamped to [0, 1], count-encoded as round(a T) binary "
                f"spikes spread over T={self.steps} steps (0/1 input spikes: bit-exact on emulator and Lava); "
                f"{self.bytes_per_sample} bytes per sample cross as levels")

    def to_dict(self) -> dict:
        return {**asdict(self), "values": self.values, "bytes_per_sample": self.bytes_per_sample}


def boundary_of(network) -> Boundary:
    """The :class:`Boundary` of an :class:`~neurodeploy.models.rsnn.RSNN`."""
    return Boundary(network.front.aggregation, tuple(network.split.boundary_shape), network.steps)


def save_front_end(run_dir: Path, network, config) -> Path:
    """Write ``run_dir/front_end.pt`` for the RSNN ``network`` loaded from ``run_dir``'s checkpoint."""
    path = Path(run_dir) / FRONT_END_FILE
    save_torch_state(path, {
        "front": network.front.state_dict(), "checkpoint_sha256": checkpoint_sha256(run_dir),
        "run_id": str(config.resolved.get("run_id", "")), "arch": network.arch.notation(),
        "aggregation": network.front.aggregation, "steps": network.steps,
        "input_shape": list(network.input_shape), "schema_version": SCHEMA_VERSION,
    })
    return path


def load_front_end(run_dir: Path, network) -> None:
    """Load ``run_dir/front_end.pt`` into ``network.front``; UserError unless it is the run's current export."""
    path = Path(run_dir) / FRONT_END_FILE
    fix = f"run `neurodeploy export {run_dir}` to export this run's checkpoint"
    if not path.is_file():
        raise UserError(f"{path}: not exported yet; {fix}")
    state = load_torch_state(path, "front-end file", fix, fix)
    if state.get("checkpoint_sha256") != checkpoint_sha256(run_dir):
        raise UserError(f"{path}: was not exported from this run's current checkpoint; {fix}")
    try:
        network.front.load_state_dict(state["front"])
    except (KeyError, RuntimeError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: the weights do not fit this run's front end; {fix}") from exc
