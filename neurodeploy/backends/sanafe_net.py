"""SANA-FE networks on its Loihi description: the architecture file, replay neurons, LIF groups, connections.

Helpers of :mod:`neurodeploy.backends.chip_model` (one SANA-FE 2.2.9 simulation of part of a network).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sanafe
import scipy.sparse

from neurodeploy.errors import UserError

SANAFE_CORE_NEURONS = 1024  # compartments of one soma / dendrite unit of SANA-FE's Loihi core


REPLAY_DENDRITE = "replay_dendrites"
_SYNAPSES = "          synapse:\n"  # the replay dendrites go last, after the default one


def replay_dendrite(slot: int) -> str:
    """The zero-energy dendrite unit of replay neuron ``slot`` on its core (1,024 compartments each)."""
    return f"{REPLAY_DENDRITE}[{slot // SANAFE_CORE_NEURONS}]"


TILES = 32
_TILE_LINE = "    - name: loihi_tile[0..31]\n"


def architecture(neurons_per_core: int, input_units: Sequence[int] | int):
    """SANA-FE's Loihi description with, on core c, ``input_units[c]`` zero-cost replay units (rounded up to
    the most of its tile's four cores) and room for them beside the core's own neurons. The bundled file
    has 1,024 replay units on every core; building a description with thousands on each of the 128 cores
    takes minutes and GBs, so each tile is written with only what its cores need.

    A core holding more than 1,024 neurons (Loihi 2: up to 8,192) gets one ``loihi_lif`` soma and one
    ``loihi_dendrites`` unit per 1,024 of them, each with Loihi 1's costs (SANA-FE times them one after
    the other). The replay neurons get their own zero-energy, zero-latency dendrite units
    (``replay_dendrites``, one per 1,024 replay neurons of a core): on the core's one dendrite unit, SANA-FE
    2.2.9 indexes compartments beyond its 1,024 and aborts, which every conv layer over 512 neurons reached
    (its own neurons plus as many replay neurons on the same cores)."""
    text = (Path(sanafe.__file__).parent / "examples" / "loihi.yaml").read_text()
    for fixed in ("max_neurons_supported: 1024", "loihi_inputs[0..1023]", _SYNAPSES, _TILE_LINE):
        if fixed not in text:
            raise UserError("SANA-FE's loihi.yaml is not the one of sanafe 2.2.9: install sanafe==2.2.9")
    lif_units = max(1, math.ceil(neurons_per_core / SANAFE_CORE_NEURONS)) - 1
    for unit in ("loihi_lif", "loihi_dendrites"):
        line = f"            - name: {unit}\n"
        if line not in text:
            raise UserError("SANA-FE's loihi.yaml is not the one of sanafe 2.2.9: install sanafe==2.2.9")
        text = text.replace(line, f"            - name: {unit}[0..{lif_units}]\n", 1)
    head, tile = text.split(_TILE_LINE)
    per_core = np.zeros(TILES * 4, dtype=np.int64)
    units_in = np.atleast_1d(np.asarray(input_units, dtype=np.int64))
    if units_in.size == 1:
        per_core[:] = units_in[0]
    else:
        per_core[:units_in.size] = units_in
    tiles = []
    for index in range(TILES):
        units = max(1, int(per_core[4 * index:4 * index + 4].max()))
        dendrites = math.ceil(units / SANAFE_CORE_NEURONS)
        replay = (f"            - name: {REPLAY_DENDRITE}[0..{dendrites - 1}]\n              attributes:\n"
                  "                model: accumulator\n                energy_update: 0.0\n"
                  "                latency_update: 0.0\n")
        body = tile.replace("max_neurons_supported: 1024", f"max_neurons_supported: {neurons_per_core + units}")
        body = body.replace("loihi_inputs[0..1023]", f"loihi_inputs[0..{units - 1}]")
        body = body.replace(_SYNAPSES, replay + _SYNAPSES, 1)
        tiles.append(f"    - name: loihi_tile[{index}]\n" + body)
    text = head + "".join(tiles)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loihi.yaml"
        path.write_text(text)
        return sanafe.load_arch(str(path))


class Replay:
    """Zero-cost input neurons replaying a spike train, one ``loihi_inputs[slot]`` unit each."""

    def __init__(self, sanafe_net, name: str, homes: list[int], cores: list, slots: dict[int, int]):
        self.group = sanafe_net.create_neuron_group(name, len(homes), soma_hw_name="loihi_inputs[0]")
        self.units = []
        for neuron, core in zip(self.group, homes):
            slot = slots.get(core, 0)
            slots[core] = slot + 1
            self.units.append((f"loihi_inputs[{slot}]", replay_dendrite(slot)))
            neuron.map_to_core(cores[core])

    def set(self, spikes: np.ndarray) -> None:
        """spikes (n, T) 0/1."""
        for neuron, (unit, dendrite), row in zip(self.group, self.units, spikes):
            neuron.set_attributes(soma_hw_name=unit, dendrite_hw_name=dendrite,
                                  model_attributes={"spikes": [bool(v) for v in row]})


def connect(src_group, dst_group, matrix: scipy.sparse.spmatrix, hw: str) -> None:
    """Connect the non-zero entries of ``matrix`` (n_src, n_dst) with synapse unit ``hw``."""
    coo = matrix.tocoo()
    keep = coo.data != 0
    pairs = list(zip(coo.row[keep].tolist(), coo.col[keep].tolist()))
    if pairs:
        src_group.connect_neurons_sparse(dst_group, {"weight": coo.data[keep].tolist()}, pairs)
        for neuron in dst_group:
            neuron.set_attributes(default_synapse_hw_name=hw)


def group_spikes(trace, names: list[str], sizes: list[int], steps: int) -> list[np.ndarray]:
    """(n, T) spikes per logged group from SANA-FE's spike trace."""
    out = {name: np.zeros((size, steps), dtype=np.uint8) for name, size in zip(names, sizes)}
    for t, fired in enumerate(trace[:steps]):
        for address in fired:
            group, _, index = str(address).rpartition(".")
            if group in out:
                out[group][int(index), t] = 1
    return [out[name] for name in names]


def lif_units(homes: list[int], slots: dict[int, int]) -> list[tuple[str, str]]:
    """(soma unit, dendrite unit) of each LIF neuron on its core: one pair per 1,024 neurons of a core."""
    units = []
    for core in homes:
        slot = slots.get(core, 0)
        slots[core] = slot + 1
        index = slot // SANAFE_CORE_NEURONS
        units.append((f"loihi_lif[{index}]", f"loihi_dendrites[{index}]"))
    return units


def lif_group(snn, name: str, neuron_attributes: dict, homes: list[int], cores: list, slots: dict[int, int],
               bias: np.ndarray | None, log: bool):
    group = snn.create_neuron_group(name, len(homes), model_attributes=neuron_attributes,
                                    soma_hw_name="loihi_lif[0]", log_spikes=log)
    biases = np.zeros(len(homes)) if bias is None else bias
    for neuron, core, (soma, dendrite), value in zip(group, homes, lif_units(homes, slots), biases):
        neuron.map_to_core(cores[core])
        neuron.set_attributes(soma_hw_name=soma, dendrite_hw_name=dendrite,
                              model_attributes={"bias": float(value)} if value else {})
    return group
