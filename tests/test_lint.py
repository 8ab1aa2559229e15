"""lint: layer mappings and chip fit, before training."""

import pytest

from neurodeploy.deploy.lint import lint_architecture, lint_for_training
from neurodeploy.errors import UserError
from neurodeploy.models.arch import parse_architecture, resolve_arch
from neurodeploy.models.training import TrainConfig


def test_dvs_gesture_cnn_maps_in_spatial_tiles_onto_one_chip():
    result = lint_architecture(resolve_arch("cnn", "dvsgesture").arch, (2, 128, 128), "loihi2")
    assert result.ok
    assert result.rows[0].mapping.startswith("input event downsampling")
    assert "netx conv" in result.rows[3].mapping  # AP2
    # conv layers in spatial tiles with the kernel stored once per core: 116 cores, one chip (explicit
    # synapses without weight sharing took 601 cores, five chips)
    resources = result.resources
    assert resources.fits_one_chip and resources.total_cores == 116
    convs = [layer for layer in resources.layers if layer.tiling is not None]
    assert len(convs) == 5 and all(layer.limited_by.startswith("spatial tiles") for layer in convs)
    conv2 = convs[1].tiling  # 128C3 on 32 x 32: the input axons of a tile of all 128 channels bound it
    assert conv2.channels == 128 and conv2.axons_per_core <= 4096
    assert conv2.channels * conv2.tile_h * conv2.tile_w <= 8192


def test_max_pool_inside_is_a_problem():
    result = lint_architecture(parse_architecture("Input-8C3-MP2-10"), (2, 34, 34), "loihi2")
    assert not result.ok and "max pooling" in result.first_problem()


def test_train_refuses_an_undeployable_snn_before_training():
    config = TrainConfig(dataset="nmnist", family="snn", arch="Input-8C3-MP2-10")
    with pytest.raises(UserError, match="cannot be deployed"):
        lint_for_training(config, console=None)
