"""netx reader/writer: lava-dl's shipped networks, round trips for every block type, and bad files."""

import h5py
import numpy as np
import pytest

from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer
from neurodeploy.deploy.netx_write import write_netx
from neurodeploy.errors import UserError

ARRAYS = ("weight", "weight_rec", "bias", "delay")
FIELDS = ("index", "kind", "in_shape", "out_shape", "neuron", "kernel", "stride", "padding", "dilation",
          "groups", "flatten_before")


def assert_same_network(a, b):
    assert a.input_shape == b.input_shape and len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers):
        for name in ARRAYS:
            u, v = getattr(x, name), getattr(y, name)
            assert (u is None) == (v is None), name
            if u is not None:
                assert np.array_equal(np.broadcast_to(u, np.broadcast_shapes(u.shape, v.shape)),
                                      np.broadcast_to(v, np.broadcast_shapes(u.shape, v.shape))), name
        for name in FIELDS[1:]:
            assert getattr(x, name) == getattr(y, name), name


def test_mnist_net(lava_dl_netx_dir):
    net = load_netx(lava_dl_netx_dir / "mnist.net")
    assert [layer.kind for layer in net.layers] == ["input", "dense", "dense", "dense"]
    assert net.input_shape == (784,) and net.num_inputs == 784 and net.num_outputs == 10
    assert [layer.params for layer in net.layers] == [0, 784 * 512, 512 * 512, 512 * 10]
    assert net.layers[1].neuron == CubaParams(4096, 123, 80, 1, False, "CUBA")
    # the last dense block has no neuron group: netx's default non-leaky integrator, threshold 1 << 17
    assert net.layers[3].neuron == CubaParams(0, 4096, 1 << 17)
    assert net.layers[1].fan_out().tolist() == [512] * 784
    raw = h5py.File(lava_dl_netx_dir / "mnist.net")["layer/1/weight"][()]
    assert np.array_equal(net.layers[1].weight, raw.astype(int))


def test_tiny_net_conv(lava_dl_netx_dir):
    net = load_netx(lava_dl_netx_dir / "tiny.net")
    inp, conv1, _ = net.layers
    assert inp.kind == "input" and inp.neuron.model == "LOIHI" and inp.out_shape == (3, 16, 16)
    assert conv1.out_shape == (24, 6, 6) and conv1.kernel == (5, 5) and conv1.stride == (2, 2)
    assert conv1.weight.shape == (24, 3, 5, 5)  # the file's trailing time axis of 1 is dropped
    assert conv1.params == 24 * 3 * 25 + 24
    # 5x5 kernel, stride 2, no padding on 16 pixels: rows 0-1 reach 1 output row, rows 2-3 reach 2, ...
    fan = conv1.fan_out().reshape(3, 16, 16)
    assert fan[0, 0, 0] == 24 and fan[0, 4, 4] == 24 * 3 * 3 and fan[0, 15, 15] == 0
    assert conv1.synapses == 24 * 6 * 6 * 3 * 25


def test_ntidigits_first_five_layers(lava_dl_netx_dir):
    path = lava_dl_netx_dir / "gts" / "ntidigits" / "ntidigits.net"
    with pytest.raises(UserError, match=r"layer 5: type 'average'.*num_layers=5"):
        load_netx(path)
    net = load_netx(path, num_layers=5)
    assert net.input_shape == (1, 1, 64) and [layer.index for layer in net.layers] == [2, 3, 4]
    first = net.layers[0]
    assert first.flatten_before and first.delay.shape == (256, 1) and first.delay.max() == 62
    assert net.layers[2].delay is None
    rows = [layer.to_dict() for layer in net.layers]
    assert rows[0]["kind"] == "dense" and rows[0]["delay"] and rows[2]["neurons"] == 242


def test_round_trip_shipped(lava_dl_netx_dir, tmp_path):
    for name, layers in (("tiny.net", None), ("mnist.net", None), ("gts/ntidigits/ntidigits.net", 5)):
        net = load_netx(lava_dl_netx_dir / name, num_layers=layers)
        copy = load_netx(write_netx(tmp_path / "copy.net", net))
        assert_same_network(net, copy)


def test_round_trip_every_block_type(netx_factory):
    f = netx_factory
    conv = f.conv(1, (2, 9, 8), 4, (3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2, bias=True)
    layers = [conv, f.dense(2, conv.neurons, 12, bias=True, delay=3, flatten=True),
              f.dense(3, 12, 8, rec=True), f.dense(4, 8, 5)]
    net = load_netx(f.write("blocks", layers, input_shape=(2, 9, 8)))
    assert [layer.kind for layer in net.layers] == ["conv", "dense", "dense_rec", "dense"]
    assert net.input_shape == (2, 9, 8) and net.layers[1].flatten_before
    assert_same_network(net, load_netx(write_netx(f.folder / "again.net", net)))
    assert net.layers[2].synapses == 12 * 8 + 8 * 8


def test_validation_of_records():
    with pytest.raises(ValueError, match="weight shape"):
        NetxLayer(index=1, kind="dense", in_shape=(3,), out_shape=(2,), weight=np.zeros((3, 2), int),
                  neuron=CubaParams(0, 0, 1))
    with pytest.raises(ValueError, match="outside"):
        CubaParams(5000, 0, 1)


def write_file(path, layers):
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        for index, items in enumerate(layers):
            sub = group.create_group(str(index))
            for key, value in items.items():
                sub.create_dataset(key, data=value)
    return path


NEURON = {"neuron/type": b"CUBA", "neuron/iDecay": 4096, "neuron/vDecay": 0, "neuron/vThMant": 10}


def dense_items(n_in=3, n_out=2, **changes):
    items = {"type": np.array([b"dense"], "S10"), "shape": [n_out], "weight": np.ones((n_out, n_in)), **NEURON}
    items.update(changes)
    return {k: v for k, v in items.items() if v is not None}


@pytest.mark.parametrize(
    "layers, message",
    [
        ([dense_items(), {"type": np.array([b"pool"], "S10")}], "layer 1: type 'pool' cannot run on Lava"),
        ([{"type": np.array([b"magic"], "S10")}], "unknown layer type 'magic'"),
        ([dense_items(weight=np.full((2, 3), np.nan))], "NaN or inf"),
        ([dense_items(), dense_items(n_in=5)], "expects 5 inputs but the previous layer has 2"),
        ([dense_items(weight=None)], "missing key 'weight'"),
        ([dense_items(**{"neuron/type": b"SDNN"})], "neuron type 'SDNN' is not supported"),
        ([dense_items(**{"neuron/vThMant": 10.5})], "'vThMant' must be one integer"),
        ([dense_items(delay=np.array([-1.0, 2.0]))], "negative delays"),
        ([dense_items(shape=[4])], "does not split into 4 rows|does not match 4 neurons"),
    ],
)
def test_bad_files_name_file_and_layer(tmp_path, layers, message):
    path = write_file(tmp_path / "bad.net", layers)
    with pytest.raises(UserError, match=message) as error:
        load_netx(path)
    assert str(path) in str(error.value)


def test_not_a_network(tmp_path):
    text = tmp_path / "notes.net"
    text.write_text("not hdf5")
    with pytest.raises(UserError, match="not an HDF5 file"):
        load_netx(text)
    with pytest.raises(UserError, match="no such file"):
        load_netx(tmp_path / "missing.net")
    with h5py.File(tmp_path / "empty.h5", "w") as handle:
        handle.create_group("other")
    with pytest.raises(UserError, match="no 'layer' group"):
        load_netx(tmp_path / "empty.h5")
    path = write_file(tmp_path / "gap.net", [dense_items(), dense_items(n_in=2)])
    with h5py.File(path, "a") as handle:
        handle.move("layer/1", "layer/2")
    with pytest.raises(UserError, match="expected '0'..'1'"):
        load_netx(path)
