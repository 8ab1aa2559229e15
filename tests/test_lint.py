"""lint: layer mappings and chip fit, before training."""

import pytest

from neurodeploy.deploy.lint import lint_architecture, lint_for_training
from neurodeploy.errors import UserError
from neurodeploy.models.arch import parse_architecture, resolve_arch
from neurodeploy.models.training import TrainConfig


def test_dvs_gesture_cnn_maps_and_fits_one_board():
    result = lint_architecture(resolve_arch("cnn", "dvsgesture").arch, (2, 128, 128), "loihi2")
    assert result.ok
    assert result.rows[0].mapping.startswith("input event downsampling")
    assert "netx conv" in result.rows[3].mapping  # AP2
    assert result.resources.fits_one_board and result.resources.total_cores > 128  # > one chip


def test_max_pool_inside_is_a_problem():
    result = lint_architecture(parse_architecture("Input-8C3-MP2-10"), (2, 34, 34), "loihi2")
    assert not result.ok and "max pooling" in result.first_problem()


def test_train_refuses_an_undeployable_snn_before_training():
    config = TrainConfig(dataset="nmnist", family="snn", arch="Input-8C3-MP2-10")
    with pytest.raises(UserError, match="cannot be deployed"):
        lint_for_training(config, console=None)
