"""Our operation counts (neurodeploy.metrics.cost) against NeuroBench's ``SynapticOperations`` (REFERENCE §6).

NeuroBench v2.3.0 counts *effective* operations: a binarised copy of each connection layer (weights and
inputs nonzero -> 1, bias dropped) is applied to the binarised input, so an op is counted only where both
the input and the weight are nonzero. The whole call is an AC when its first input is in {-1, 0, 1}, else a
MAC. Its ``Dense`` figure is the same with all-ones inputs. Known differences, all asserted exactly below:

1. Zero initial state: at t = 0, h[-1] = c[-1] = 0, so the recurrent product W_hh h (and f * c) costs nothing;
   effective = T x (our per-step count) - sum over layers of gates x M^2 (+ M for the LSTM's f * c).
2. LSTM elementwise products: NeuroBench adds f * c, i * g and o * tanh(c) (3M per step) to the MACs; our
   cost model keeps them apart as ``muls_per_step`` (3M), so NeuroBench MACs = our macs + muls.
3. Spike input to a recurrent cell: the AC/MAC decision looks at x only, so a first layer fed with events is
   counted entirely as ACs, including W_hh h whose h is analog (a NeuroBench simplification; we count
   W_hh h as MACs).
4. LSTM ``Dense``: the all-ones copy does not reach the nested (h, c) state tuple, so NeuroBench's Dense for
   nn.LSTMCell equals its effective count instead of T x 4(MN + M^2) + 3M T.
5. Convolutions: NeuroBench counts only taps that fall on the image; our static MACs include the zero-padded
   taps (what frameworks compute), so for conv layers its Dense is the sum of real fan-outs
   (``cost.layer_fan_out``), below ours. For SNN synops both use the real fan-out and agree exactly.
"""

import math

import pytest

pytest.importorskip("neurobench")

import torch
from neurobench.benchmarks import Benchmark
from neurobench.metrics.workload import SynapticOperations
from neurobench.models import TorchModel
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neurodeploy.metrics.cost import layer_fan_out, static_cost, synops_per_sample
from neurodeploy.models.arch import ConvLayer, parse_architecture
from neurodeploy.models.recurrent import build_recurrent_network

T = 4
SAMPLES = 5


def neurobench_ops(network: nn.Module, x: torch.Tensor) -> dict:
    data = DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=len(x))
    benchmark = Benchmark(TorchModel(network), data, [], [], [[], [SynapticOperations]])
    return benchmark.run(quiet=True)["SynapticOperations"]


def event_input(shape, density=0.3, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(SAMPLES, *shape, T, generator=generator) < density).float()


def analog_input(shape, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(SAMPLES, *shape, T, generator=generator) + 0.1  # no zeros: every input is active


def recurrent(family, notation, shape):
    torch.manual_seed(0)
    return parse_architecture(notation), build_recurrent_network(family, parse_architecture(notation), shape)


@pytest.mark.parametrize("family", ["rnn", "lstm"])
def test_dense_recurrent_macs_with_analog_input(family):
    arch, network = recurrent(family, "Input-6-5-3", (2, 2, 2))
    cost = static_cost(arch, (2, 2, 2), family)
    ops = neurobench_ops(network, analog_input((2, 2, 2)))
    gates = 4 if family == "lstm" else 1
    hidden = [layer.units for layer in arch.layers[:-1]]
    zero_state = sum(gates * m * m + (m if family == "lstm" else 0) for m in hidden)  # difference 1
    per_step = cost.macs_per_step + cost.muls_per_step  # difference 2 (muls are 0 for the RNN)
    assert ops["Effective_ACs"] == 0
    assert ops["Effective_MACs"] == T * per_step - zero_state
    if family == "rnn":
        assert ops["Dense"] == T * cost.macs_per_step
    else:
        assert ops["Dense"] == ops["Effective_MACs"]  # difference 4


@pytest.mark.parametrize("family", ["rnn", "lstm"])
def test_event_input_makes_the_first_cell_count_as_acs(family):
    _, network = recurrent(family, "Input-6FC-3", (2, 2, 2))
    x = event_input((2, 2, 2))
    ops = neurobench_ops(network, x)
    gates, m, k = (4 if family == "lstm" else 1), 6, 3
    input_spikes = float((x != 0).sum()) / SAMPLES
    cell = input_spikes * gates * m + (T - 1) * gates * m * m  # synops of the events + W_hh h (difference 3)
    if family == "lstm":
        cell += 2 * T * m + (T - 1) * m  # i * g and o * tanh(c) every step, f * c after t = 0
    assert ops["Effective_ACs"] == pytest.approx(cell)
    assert ops["Effective_MACs"] == T * m * k  # the readout sees analog h


def test_conv_rnn_counts_only_real_taps():
    arch, network = recurrent("rnn", "Input-3C3-2", (2, 4, 4))
    ops = neurobench_ops(network, analog_input((2, 4, 4)))
    input_taps = int(layer_fan_out(ConvLayer(3), (2, 4, 4)).sum())
    hidden_taps = int(layer_fan_out(ConvLayer(3), (3, 4, 4)).sum())
    readout = 3 * 4 * 4 * 2
    assert ops["Effective_MACs"] == T * (input_taps + readout) + (T - 1) * hidden_taps
    assert ops["Dense"] == T * (input_taps + hidden_taps + readout)
    ours = static_cost(arch, (2, 4, 4), "rnn").macs_per_step
    assert ours == 3 * (2 * 9 + 3 * 9) * 16 + readout > ops["Dense"] / T  # difference 5: padded taps


class SpikingConvDense(nn.Module):
    """A stateless stand-in for the SNN's synapses: conv -> threshold -> dense, step by step (no Lava here).

    SNN synops depend only on the input spikes of each layer and its fan-out, so any spike source will do.
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 5 * 5, 3, bias=False)
        self.layer_inputs: list[torch.Tensor] = []

    def forward(self, x):
        spikes_in, hidden_spikes, outputs = [], [], []
        for t in range(x.shape[-1]):
            frame = x[..., t]
            hidden = (self.conv(frame) > 0).float()
            outputs.append((self.fc(hidden.flatten(1)) > 0).float())
            spikes_in.append(frame.flatten(1))
            hidden_spikes.append(hidden.flatten(1))
        self.layer_inputs = [torch.stack(spikes_in).sum(0), torch.stack(hidden_spikes).sum(0)]
        return torch.stack(outputs, dim=2)


def test_snn_synops_equal_neurobench_effective_acs():
    torch.manual_seed(0)
    network = SpikingConvDense()
    arch, shape = parse_architecture("Input-4C3-3"), (2, 5, 5)
    ops = neurobench_ops(network, event_input(shape))
    ours = sum(synops_per_sample(spikes.numpy(), layer_fan_out(layer, in_shape))  # as the SNN report counts
               for spikes, layer, (in_shape, _) in zip(network.layer_inputs, arch.layers, arch.shapes(shape)))
    assert ops["Effective_MACs"] == 0
    assert ops["Effective_ACs"] == pytest.approx(ours)
    assert ops["Dense"] == T * static_cost(arch, shape, "snn").adds_per_step
    assert ours > 0 and not math.isclose(ours, ops["Dense"])
