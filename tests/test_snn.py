"""The paper-LIF -> CUBA mapping, input downsampling, and the pool -> conv export rewrite."""

import h5py
import numpy as np
import pytest
import torch

from neurodeploy.deploy.netx_write import pool_conv_groups, write_slayer_netx
from neurodeploy.errors import UserError
from neurodeploy.models.arch import parse_architecture
from neurodeploy.models.snn import LIFMapping, build_spiking_network, downsample_events


def test_lif_mapping_gives_the_papers_leak_and_threshold_in_loihi_units():
    mapping = LIFMapping()
    params = mapping.cuba_params()
    assert params["current_decay"] == 1.0  # the current follows the input: i[t] = W s[t]
    assert round(params["voltage_decay"] * 4096) == 2867  # 1 - k, k = 0.3
    assert 1 - params["voltage_decay"] == pytest.approx(mapping.leak, abs=1e-3)
    assert mapping.scale * mapping.threshold == pytest.approx(params["threshold"])
    # surrogate: area 1 (scale_grad x 0.1) and std equal to the rectangle's (a s / sqrt(12))
    tau = params["tau_grad"] * params["threshold"] * 100
    assert params["scale_grad"] * 0.1 == pytest.approx(1.0)
    assert np.sqrt(2) * tau == pytest.approx(mapping.surrogate_width * mapping.scale / np.sqrt(12))


def test_exported_neuron_parameters(tmp_path):
    net = build_spiking_network(parse_architecture("Input-16FC-10"), (2, 34, 34))
    write_slayer_netx(net, tmp_path / "m.net")
    with h5py.File(tmp_path / "m.net") as handle:
        neuron = handle["layer/0/neuron"]
        assert (neuron["iDecay"][()], neuron["vDecay"][()], neuron["vThMant"][()]) == (4096, 2867, 80)
        weights = handle["layer/0/weight"][()]
        assert weights.shape == (16, 2312) and np.all(weights % 2 == 0) and np.abs(weights).max() <= 256


def test_downsample_events_is_max_pooling_of_binary_frames():
    rng = np.random.default_rng(0)
    frames = (rng.random((3, 2, 9, 9, 4)) < 0.2).astype(np.uint8)
    ours = downsample_events(frames, 2)
    reference = torch.nn.functional.max_pool3d(torch.from_numpy(frames).float(), (2, 2, 1)).numpy()
    assert np.array_equal(ours, reference.astype(np.uint8)) and ours.shape == (3, 2, 4, 4, 4)


def test_pool_block_is_exported_as_a_grouped_channel_diagonal_strided_conv(tmp_path):
    net = build_spiking_network(parse_architecture("Input-3C3-AP2-10"), (2, 8, 8))
    write_slayer_netx(net, tmp_path / "c.net")
    with h5py.File(tmp_path / "c.net") as handle:
        types = [handle[f"layer/{i}/type"][0].decode() for i in range(len(handle["layer"]))]
        assert types == ["input", "conv", "conv", "flatten", "dense"]
        pool = handle["layer/2"]
        weight = pool["weight"][()]
        assert weight.shape == (3, 1, 2, 2) and list(pool["stride"][()]) == [2, 2]
        assert int(pool["groups"][()]) == 3 and np.all(weight == 64)


def test_pool_conv_groups_fit_lavas_int8_groups():
    assert [pool_conv_groups(c) for c in (1, 3, 64, 127, 128, 256, 200)] == [1, 3, 64, 127, 64, 64, 100]


def test_max_pooling_inside_the_network_is_refused():
    with pytest.raises(UserError, match="max pooling"):
        build_spiking_network(parse_architecture("Input-4C3-MP2-10"), (2, 8, 8))


def _blocks_by_name(net):
    return dict(zip(net.block_names, net.blocks))


def test_wake_silent_layers_scales_only_silent_layers_until_they_fire():
    torch.manual_seed(0)
    net = build_spiking_network(parse_architecture("Input-4C3-AP2-64FC-10"), (2, 12, 12))
    blocks = _blocks_by_name(net)
    with torch.no_grad():  # make fc2 silent: weights far too small to ever reach threshold
        blocks["fc2"].synapse.weight.mul_(0.02)
    x = (torch.rand(6, 2, 12, 12, 20, generator=torch.Generator().manual_seed(1)) < 0.15).float()
    conv_before = blocks["conv0"].synapse.weight.detach().clone()
    net.record = True
    with torch.no_grad():
        net(x)
    assert net.layer_spikes[2].sum() == 0, "the test needs a silent fc2"
    changes = net.wake_silent_layers(x)
    fc2 = changes[0]
    assert fc2.layer == "fc2" and fc2.gain > 1 and fc2.active_before == 0 and fc2.rate_after >= 0.01
    assert torch.equal(blocks["conv0"].synapse.weight, conv_before), "an active layer was changed"
    with torch.no_grad():
        net(x)
    assert float(net.layer_spikes[2].mean()) == pytest.approx(fc2.rate_after)
    assert all(change.layer != "fc2" for change in net.wake_silent_layers(x)), "fc2 is awake now"


def test_wake_silent_layers_leaves_an_active_network_unchanged():
    torch.manual_seed(0)
    net = build_spiking_network(parse_architecture("Input-32FC-10"), (2, 8, 8))
    x = (torch.rand(8, 2, 8, 8, 15, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    before = [p.detach().clone() for p in net.parameters()]
    assert net.wake_silent_layers(x, active_below=0.0) == []
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
