"""Micro-batches: the same gradients as one whole batch with a fraction of the activations held."""

import pytest
import torch

from neurodeploy.models.arch import parse_architecture
from neurodeploy.models.losses import loss_rate
from neurodeploy.models.snn import build_spiking_network
from neurodeploy.models.training import batch_gradients, peak_rss_bytes


def _gradients(net, x, targets, micro_batch):
    net.zero_grad()
    loss, out = batch_gradients(net, loss_rate, x, targets, micro_batch)
    return loss, out, [p.grad.detach().clone() for p in net.parameters() if p.grad is not None]


@pytest.mark.parametrize("micro_batch", [1, 2, 4])
def test_micro_batches_give_the_whole_batch_gradients(micro_batch):
    torch.manual_seed(0)
    net = build_spiking_network(parse_architecture("Input-4C3-AP2-32FC-10"), (2, 10, 10))
    x = (torch.rand(6, 2, 10, 10, 12, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    targets = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 4, 5]), 10).float()
    whole_loss, whole_out, whole = _gradients(net, x, targets, micro_batch=6)
    loss, out, parts = _gradients(net, x, targets, micro_batch)
    assert whole and any(float(g.abs().sum()) > 0 for g in whole), "the check needs non-zero gradients"
    assert loss == pytest.approx(whole_loss, rel=1e-6)
    assert torch.equal(out, whole_out)
    for mine, theirs in zip(parts, whole):
        # float sums in another order: equal to ~1e-6 of the layer's largest gradient
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max()))


def test_peak_rss_is_this_process_resident_memory():
    held = torch.ones(64 * 2**20 // 4)  # 64 MiB resident
    assert peak_rss_bytes() >= held.numel() * 4
