import pytest
import torch

from neurodeploy.models.losses import LOSSES, loss_last, loss_rate, predict

# two samples, three classes, T = 2
OUTPUTS = torch.tensor([
    [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]],
    [[0.0, 0.0], [1.0, 1.0], [0.5, 0.0]],
])
LABELS = torch.tensor([0, 1])


def test_rate_loss_is_eq_10_and_15():
    # sample 0: mean (0.5, 0, 0.5) vs (1, 0, 0) -> 0.25 + 0 + 0.25
    # sample 1: mean (0, 1, 0.25) vs (0, 1, 0) -> 0.0625
    assert float(loss_rate(OUTPUTS, LABELS)) == pytest.approx((0.5 + 0.0625) / 2)


def test_last_step_loss_is_eq_11():
    # sample 0: last (0, 0, 1) vs (1, 0, 0) -> 2; sample 1: (0, 1, 0) -> 0
    assert float(loss_last(OUTPUTS, LABELS)) == pytest.approx(1.0)


def test_one_hot_and_integer_targets_agree():
    onehot = torch.nn.functional.one_hot(LABELS, 3).float()
    for loss in (loss_rate, loss_last):
        assert torch.equal(loss(OUTPUTS, onehot), loss(OUTPUTS, LABELS))


def test_predict_is_argmax_of_time_average():
    assert predict(OUTPUTS).tolist() == [0, 1]


def test_shape_checks_and_names():
    with pytest.raises(ValueError):
        loss_rate(OUTPUTS[:, :, 0], LABELS)
    with pytest.raises(ValueError):
        loss_rate(OUTPUTS, torch.zeros(2, 4))
    assert LOSSES["last"] is loss_last and LOSSES["rate"] is loss_rate
