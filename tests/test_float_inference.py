"""The compiled float reference gives SLAYER's own forward-pass spikes, bit for bit."""

import numpy as np
import pytest
import torch

from neurodeploy.backends import torch_float as float_inference
from neurodeploy.models.arch import parse_architecture
from neurodeploy.models.snn import build_spiking_network


def _network(arch, shape, seed=0):
    torch.manual_seed(seed)
    return build_spiking_network(parse_architecture(arch), shape)


def _frames(shape, samples, steps, density, seed=1):
    return (np.random.default_rng(seed).random((samples, *shape, steps)) < density).astype(np.uint8)


@pytest.mark.parametrize("arch, shape", [
    ("Input-64FC-10", (2, 12, 12)),
    ("Input-MP2-4C3-AP2-8C3-32FC-10", (2, 20, 20)),  # input pooling, conv, pool (odd size: floor), flatten
])
def test_compiled_forward_equals_slayer_on_every_layer(arch, shape):
    net = _network(arch, shape)
    frames = _frames(shape, 24, 20, 0.15)
    net.wake_silent_layers(torch.from_numpy(frames[:8]).float())
    with torch.no_grad():
        reference = float_inference._slayer_forward(net, frames)
    fast, path = float_inference.float_layer_spikes(net, frames, batch_size=10)
    assert path == "compiled"
    assert len(fast) == len(reference)
    assert all(int(spikes.sum()) > 0 for spikes in reference), "every layer must spike for the check to mean much"
    for mine, theirs in zip(fast, reference):
        np.testing.assert_array_equal(mine, theirs)


def test_a_failed_check_falls_back_to_slayer(monkeypatch):
    net = _network("Input-32FC-10", (2, 8, 8))
    frames = _frames((2, 8, 8), 12, 10, 0.3)
    reference = float_inference._slayer_forward(net, frames)
    broken = float_inference._CompiledForward.__call__
    monkeypatch.setattr(float_inference._CompiledForward, "__call__",
                        lambda self, x: [1 - spikes for spikes in broken(self, x)])
    spikes, path = float_inference.float_layer_spikes(net, frames)
    assert path == "slayer"
    for mine, theirs in zip(spikes, reference):
        np.testing.assert_array_equal(mine, theirs)
