"""The papers' architecture notation and the shipped model files."""

import pytest

from neurodeploy.errors import UserError
from neurodeploy.models.arch import (
    ConvLayer,
    DenseLayer,
    PoolLayer,
    available_models,
    parse_architecture,
    resolve_arch,
)


def test_parses_the_dvs_gesture_cnn_and_infers_shapes():
    arch = parse_architecture("Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11")
    assert arch.layers[0] == PoolLayer(4, "max") and arch.layers[1] == ConvLayer(64, 3)
    assert arch.layers[-1] == DenseLayer(11) and arch.num_classes == 11
    shapes = arch.shapes((2, 128, 128))
    assert [out for _, out in shapes] == [(2, 32, 32), (64, 32, 32), (128, 32, 32), (128, 16, 16),
                                          (128, 16, 16), (128, 8, 8), (256,), (11,)]
    assert arch.notation() == "Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11"


@pytest.mark.parametrize("text", ["Input-512XX-10", "Input-MP4", "Input-0FC-10", ""])
def test_rejects_bad_strings(text):
    with pytest.raises(UserError):
        parse_architecture(text)


def test_conv_after_dense_is_rejected_with_a_clear_message():
    with pytest.raises(UserError, match="image input"):
        parse_architecture("Input-10FC-8C3-10").shapes((2, 34, 34))


def test_every_model_file_loads_and_resolves_by_short_name():
    models = available_models()
    assert {"nmnist_mlp", "nmnist_cnn", "dvsgesture_mlp", "dvsgesture_cnn"} <= set(models)
    assert resolve_arch("mlp", "nmnist").arch.notation() == "Input-512FC-10"
    assert resolve_arch("cnn", "dvsgesture").name == "dvsgesture_cnn"
    assert resolve_arch("Input-64FC-10", "nmnist").arch.layers == (DenseLayer(64), DenseLayer(10))
    with pytest.raises(UserError, match="unknown architecture"):
        resolve_arch("resnet", "nmnist")
