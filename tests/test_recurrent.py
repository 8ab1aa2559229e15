import itertools
import math

import pytest
import torch
from torch import nn

from neurodeploy.errors import UserError
from neurodeploy.models.arch import parse_architecture
from neurodeploy.models.recurrent import build_recurrent_network

SMALL_ARCHS = [
    ("Input-16FC-4", (2, 5, 5)),
    ("Input-8-8-3", (2, 4, 4)),
    ("Input-MP2-12FC-5", (2, 6, 6)),
    ("Input-4C3-AP2-6C3-MP2-10FC-3", (2, 8, 8)),
]


def spikes(shape, steps, density=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, steps, generator=generator) < density).float()


def net(family, arch, shape, seed=0):
    torch.manual_seed(seed)
    return build_recurrent_network(family, parse_architecture(arch), shape)


@pytest.mark.parametrize("family", ["rnn", "lstm"])
@pytest.mark.parametrize("arch,shape", SMALL_ARCHS)
def test_forward_gives_scores_per_step_and_gradients(family, arch, shape):
    network = net(family, arch, shape)
    x = spikes((3, *shape), 4)
    out = network(x)
    assert out.shape == (3, parse_architecture(arch).num_classes, 4)
    out.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in network.parameters())


@pytest.mark.parametrize("family", ["rnn", "lstm"])
def test_outputs_are_causal(family):
    network = net(family, "Input-4C3-AP2-10FC-3", (2, 6, 6))
    x = spikes((2, 2, 6, 6), 6)
    changed = x.clone()
    changed[..., 3:] = 1 - changed[..., 3:]
    with torch.no_grad():
        a, b = network(x), network(changed)
    assert torch.equal(a[..., :3], b[..., :3])
    assert not torch.allclose(a[..., 3:], b[..., 3:])


def test_dense_rnn_follows_the_paper_equation():
    """h[t] = tanh(W1 x[t] + W2 h[t-1] + b), y[t] = W_y h[t] + b_y, written out by hand."""
    network = net("rnn", "Input-7FC-3", (1, 2, 3))
    x = torch.randn(2, 1, 2, 3, 5)
    cell = network.layers[0].cell
    h = torch.zeros(2, 7)
    expected = []
    for t in range(5):
        pre = x[..., t].flatten(1) @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias_ih + cell.bias_hh
        h = torch.tanh(pre)
        expected.append(h @ network.readout.weight.T + network.readout.bias)
    with torch.no_grad():
        assert torch.allclose(network(x), torch.stack(expected, dim=2), atol=1e-6)


@pytest.mark.parametrize("family,reference", [("rnn", nn.RNNCell), ("lstm", nn.LSTMCell)])
def test_conv_cells_on_one_pixel_equal_pytorch_cells(family, reference):
    """On a 1x1 image only the centre taps of the 3x3 kernels act: ConvRNN/ConvLSTM must equal PyTorch's
    RNNCell/LSTMCell with those weights (a reference implementation we did not write)."""
    network = net(family, "Input-5C3-4", (3, 1, 1))
    conv = network.layers[0]
    cell = reference(3, 5)
    with torch.no_grad():
        cell.weight_ih.copy_(conv.input_conv.weight[:, :, 1, 1])
        cell.weight_hh.copy_(conv.hidden_conv.weight[:, :, 1, 1])
        cell.bias_ih.copy_(conv.input_conv.bias)
        cell.bias_hh.zero_()
    x = torch.randn(2, 3, 1, 1, 6)
    state = torch.zeros(2, 5) if family == "rnn" else (torch.zeros(2, 5), torch.zeros(2, 5))
    expected = []
    with torch.no_grad():
        for t in range(6):
            state = cell(x[..., t].flatten(1), state)
            h = state if family == "rnn" else state[0]
            expected.append(network.readout(h))
        assert torch.allclose(network(x), torch.stack(expected, dim=2), atol=1e-6)


def _dense_params(family, sizes):
    """Parameters of a dense recurrent stack with PyTorch cells (two bias vectors) and a biased readout."""
    gates = 1 if family == "rnn" else 4
    total = 0
    for fan_in, units in itertools.pairwise(sizes[:-1]):
        total += gates * (units * fan_in + units * units + 2 * units)
    return total + sizes[-1] * sizes[-2] + sizes[-1]


@pytest.mark.parametrize("family", ["rnn", "lstm"])
def test_parameter_counts_of_the_paper_mlps(family):
    n_mnist = net(family, "Input-512FC-10", (2, 34, 34))
    assert n_mnist.num_parameters() == _dense_params(family, [2 * 34 * 34, 512, 10])
    gesture = net(family, "Input-MP4-512FC-11", (2, 128, 128))
    assert gesture.num_parameters() == _dense_params(family, [2 * 32 * 32, 512, 11])


def test_parameter_ratio_to_the_snn_matches_paper_fig14():
    """Paper Fig. 14: on the DVS Gesture MLP the SNN has ~80% of the RNN's and ~20% of the LSTM's weights."""
    snn_weights = 2 * 32 * 32 * 512 + 512 * 11
    rnn = net("rnn", "Input-MP4-512FC-11", (2, 128, 128)).num_parameters()
    lstm = net("lstm", "Input-MP4-512FC-11", (2, 128, 128)).num_parameters()
    assert snn_weights / rnn == pytest.approx(0.80, abs=0.01)
    assert snn_weights / lstm == pytest.approx(0.20, abs=0.01)


def test_conv_lstm_parameter_count():
    network = net("lstm", "Input-4C3-AP2-6FC-3", (2, 4, 4))
    conv = 4 * 4 * 2 * 9 + 4 * 4 * 4 * 9 + 4 * 4  # input conv, 3x3 hidden conv (no bias), one bias
    dense = 4 * (6 * 4 * 2 * 2 + 6 * 6 + 2 * 6)
    assert network.num_parameters() == conv + dense + 3 * 6 + 3


def test_activity_records_nonzero_fractions():
    network = net("rnn", "Input-MP2-12FC-5", (2, 6, 6))
    x = spikes((4, 2, 6, 6), 5, density=0.25)
    with pytest.raises(RuntimeError):
        network.activity()
    network.record = True
    with torch.no_grad():
        network(x)
    pool, dense, readout = network.activity()
    assert [a.name for a in (pool, dense, readout)] == ["pool0", "fc1", "fc2"]
    assert (pool.kind, dense.kind, readout.kind) == ("maxpool", "rnn", "readout")
    assert pool.shape == (2, 3, 3) and pool.neurons == 18
    assert pool.input_nonzero_fraction == pytest.approx(float(x.mean()))
    pooled = torch.nn.functional.max_pool2d(x.permute(0, 4, 1, 2, 3).reshape(-1, 2, 6, 6), 2)
    assert pool.nonzero_fraction == pytest.approx(float((pooled != 0).float().mean()))
    assert dense.input_nonzero_fraction == pool.nonzero_fraction
    assert 0.9 < dense.nonzero_fraction <= 1.0
    assert set(readout.to_dict()) >= {"name", "kind", "shape", "neurons", "nonzero_fraction"}


def test_errors():
    arch = parse_architecture("Input-8FC-2")
    with pytest.raises(UserError, match="unknown recurrent family"):
        build_recurrent_network("gru", arch, (2, 4, 4))
    with pytest.raises(UserError, match="hidden layer"):
        build_recurrent_network("rnn", parse_architecture("Input-10"), (2, 4, 4))
    network = build_recurrent_network("rnn", arch, (2, 4, 4))
    with pytest.raises(UserError, match="does not fit"):
        network(torch.zeros(1, 2, 4, 5, 3))
    with pytest.raises(UserError, match="does not fit"):
        network(torch.zeros(1, 2, 4, 4, 0))


def test_one_training_step_lowers_the_rate_loss():
    from neurodeploy.models.losses import loss_rate

    network = net("lstm", "Input-16FC-3", (2, 3, 3))
    x = spikes((6, 2, 3, 3), 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    before = loss_rate(network(x), labels)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    assert loss_rate(network(x), labels).item() < before.item()
    assert math.isfinite(before.item())
