"""lava-dl's PilotNet LIF as a yardstick: the network, its image and the states Loihi 2 recorded for it.

lava-dl 0.6.0's wheel installs its netx tests beside the package: ``tests/lava/lib/dl/netx/gts/pilotnet_lif``
holds ``network.net`` (PilotNet LIF: a bias-driven input layer, 5 conv and 4 dense layers), ``image.npy``
(the input layer's ``bias_mant``, (x, y, c)) and, per layer, the current ``u``, voltage ``v`` and spikes
recorded on a Loihi 2 chip (``conv-k-u.npy``, ``conv-k-v.npy``, ``conv-k.npy``, ``fc-k-*``; the input layer's
spikes in ``input.npy``), each (x, y, c, T) or (n, T). lava-dl's ``test_hdf5_nx.py`` runs the board with
``reset_interval=16`` for 15 steps and compares step index 14.

:func:`compare_with_hardware` runs the network through :func:`neurodeploy.backends.states.run_states` the
same way and compares every recorded layer at every one of the 15 steps.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.backends.states import run_states
from neurodeploy.deploy.netx import NetxNetwork, load_netx
from neurodeploy.errors import UserError

PILOTNET_SUBDIR = Path("tests") / "lava" / "lib" / "dl" / "netx" / "gts" / "pilotnet_lif"
RESET_INTERVAL = 16  # test_hdf5_nx.py: steps_per_sample
STEPS = 15  # test_hdf5_nx.py: num_steps
# recorded file stem of each network layer, in network order (input layer first)
RECORDED = ("input", "conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "fc-0", "fc-1", "fc-2", "fc-3")


def pilotnet_dir(folder: str | Path | None = None) -> Path:
    """The installed lava-dl PilotNet LIF test folder (or ``folder``); exit 2 with one line if absent."""
    path = Path(folder) if folder is not None else Path(sysconfig.get_paths()["purelib"]) / PILOTNET_SUBDIR
    if not (path / "network.net").is_file() or not (path / "image.npy").is_file():
        raise UserError(f"{path}: lava-dl's PilotNet LIF network.net / image.npy not found; install lava-dl 0.6.0 "
                        "(its wheel ships tests/lava/lib/dl/netx/gts/pilotnet_lif)")
    return path


def load_pilotnet(folder: str | Path | None = None) -> tuple[NetxNetwork, np.ndarray]:
    """PilotNet LIF and its input layer's bias (1, n_in) in our (C, H, W) order, from the image (x, y, c)."""
    path = pilotnet_dir(folder)
    net = load_netx(path / "network.net")
    image = np.load(path / "image.npy", allow_pickle=False)
    bias = image.transpose(2, 1, 0).reshape(1, -1).astype(np.int64)
    if bias.shape[1] != net.num_inputs:
        raise UserError(f"{path / 'image.npy'}: {image.shape} does not fit the network's input {net.input_shape}")
    return net, bias


def _flat(recorded: np.ndarray) -> np.ndarray:
    """(x, y, c, T) -> (c * y * x, T) in our (C, H, W) order; (n, T) stays."""
    if recorded.ndim == 4:
        recorded = recorded.transpose(2, 1, 0, 3)
    return recorded.reshape(-1, recorded.shape[-1])


@dataclass(frozen=True)
class StateAgreement:
    """Fraction of (neuron, step) entries equal to the hardware recording, per state, over ``steps`` steps.

    ``None`` where the layer has no recording of that state (the input layer's u and v).
    """

    name: str
    recorded: str
    neurons: int
    steps: int
    u: float | None
    v: float | None
    spikes: float
    spikes_emulated: int
    spikes_recorded: int

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def compare_with_hardware(folder: str | Path | None = None, *, v_readout: str = "chip",
                          steps: int = STEPS) -> list[StateAgreement]:
    """Every layer's u / v / spikes from our emulation vs the Loihi 2 recording, steps 0..steps-1."""
    path = pilotnet_dir(folder)
    net, bias = load_pilotnet(path)
    records = run_states(net, steps=steps, input_bias=bias, reset_interval=RESET_INTERVAL, v_readout=v_readout)
    out = []
    for record, stem in zip(records, RECORDED):
        spike_file = "fc-3-s" if stem == "fc-3" else stem
        recorded_spikes = _flat(np.load(path / f"{spike_file}.npy", allow_pickle=False))[:, :steps]
        agreement = {}
        for state in ("u", "v"):
            file = path / f"{stem}-{state}.npy"
            if file.is_file():
                recorded = _flat(np.load(file, allow_pickle=False))[:, :steps]
                agreement[state] = float(np.mean(getattr(record, state)[0] == recorded))
            else:
                agreement[state] = None
        ours = record.spikes[0]
        out.append(StateAgreement(record.name, stem, int(ours.shape[0]), steps, agreement["u"], agreement["v"],
                                  float(np.mean(ours == (recorded_spikes != 0))), int(ours.sum()),
                                  int((recorded_spikes != 0).sum())))
    return out
