"""Analytic per-core chip time (backends/chip_time.py): by hand, against SANA-FE, and in a report above SANA-FE's
size limit."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from neurodeploy.backends import chip_model
from neurodeploy.backends.chip_model import estimate_chip
from neurodeploy.backends.chip_time import analytic_chip_time, sanafe_event_times
from neurodeploy.backends.emulator import run_emulator
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.reports import plots
from neurodeploy.reports.like_for_like import latency_source

QUIET = Console(file=open("/dev/null", "w"))
# measured (docs/chip_model.md, "Analytic chip time"): analytic / SANA-FE 2.2.9 chip time on small nets that
# SANA-FE simulates whole, 0.94-1.15 (three nets x two profiles x two placements)
AGREEMENT = (0.85, 1.25)


def test_event_times_are_sanafes_loihi_description():
    times = sanafe_event_times()
    assert (times.conv_synapse, times.dense_synapse) == (3.1e-9, 3.8e-9)
    assert times.neuron_access + times.neuron_update == pytest.approx(9.7e-9)
    assert (times.spike_out, times.message_in, times.message_out) == (30.0e-9, 16.0e-9, 5.1e-9)
    assert times.sync == ((1, 0.6e-6), (2, 1.0e-6), (4, 1.4e-6), (29, 1.8e-6))
    assert [times.sync_for(n) for n in (1, 3, 28, 32)] == [0.6e-6, 1.0e-6, 1.4e-6, 1.8e-6]


def test_tiny_net_by_hand(netx_factory):
    # 4 inputs -> 3 -> 2, every weight 1: input on core 0, the layers on cores 1 and 2 (one tile)
    layers = [netx_factory.dense(0, 4, 3), netx_factory.dense(1, 3, 2)]
    net = load_netx(netx_factory.write("hand", layers, input_shape=(4,)))
    ones = [dataclasses.replace(layer, weight=np.ones_like(layer.weight)) if layer.kind != "input" else layer
            for layer in net.layers]
    net = dataclasses.replace(net, layers=tuple(ones))
    inputs = np.zeros((1, 4, 2), dtype=np.uint8)
    inputs[0, [0, 1], 0] = 1  # step 0: inputs 0 and 1 spike
    hidden = np.zeros((1, 3, 2), dtype=np.uint8)
    hidden[0, 0, 0] = 1  # step 0: hidden neuron 0 spikes
    out = np.zeros((1, 2, 2), dtype=np.uint8)
    result = analytic_chip_time(net, inputs, [hidden, out], load_profile("loihi1"))
    assert (result.cores, result.tiles) == (3, 1)
    ns = 1e-9
    # step 0, core 1 (slowest): 3 neurons x 9.7 + 2 messages in x 16 + 6 synapses x 3.8 + 1 spike x 30
    # + 1 message out x 5.1 = 119.0 ns (core 0: 2 messages out = 10.2 ns; core 2: 2 x 9.7 + 16 + 2 x 3.8 = 43 ns)
    step0 = 3 * 9.7 + 2 * 16 + 6 * 3.8 + 30 + 5.1
    step1 = 3 * 9.7  # nothing arrives: core 1 only services its neurons
    sync = 600.0  # SANA-FE's barrier for one tile
    assert result.latency_per_step_s == pytest.approx(((step0 + sync) * ns, (step1 + sync) * ns), rel=1e-12)
    assert result.latency_per_sample_s == pytest.approx((step0 + step1 + 2 * sync) * ns, rel=1e-12)
    assert result.static_energy_j == pytest.approx(load_profile("loihi1").si("static") * result.latency_per_sample_s)
    assert result.to_dict()["dynamic_energy_j"] is None and result.to_dict()["kind"] == "analytic"


def test_agrees_with_sanafe_on_a_small_conv_net(netx_factory):
    placement = "balanced"  # 110 cores on 28 tiles (minimal, 4 cores: measured 0.99, docs/chip_model.md)
    layers = [netx_factory.conv(0, (2, 16, 16), 8), netx_factory.conv(1, (8, 14, 14), 8),
              netx_factory.dense(2, 8 * 12 * 12, 10, flatten=True)]
    net = load_netx(netx_factory.write("conv2", layers, input_shape=(2, 16, 16)))
    inputs = netx_factory.spikes(math.prod((2, 16, 16)), 8, samples=2, density=0.2)
    run = run_emulator(net, inputs)
    profile = load_profile("loihi2")
    sanafe = estimate_chip(net, inputs, run.layer_spikes, profile, placement=placement)
    analytic = analytic_chip_time(net, inputs, run.layer_spikes, profile, placement=placement)
    assert analytic.cores == sanafe.cores
    ratio = analytic.latency_per_sample_s / sanafe.latency_per_sample_s
    assert AGREEMENT[0] < ratio < AGREEMENT[1], ratio  # measured: 0.94


def test_report_above_sanafes_limit_carries_the_analytic_chip_time(trained_snn_run, tmp_path, monkeypatch):
    monkeypatch.setattr(chip_model, "MAX_TOTAL_CONNECTIONS", 100)  # the 2312-64-10 net: SANA-FE declines
    monkeypatch.setattr(plots, "_save", lambda fig, path: Path(path))  # no pictures: they take most of the time
    report = execute(RunRequest(target=trained_snn_run, backend="emulator", samples=3, out=tmp_path / "r"),
                     console=QUIET, err_console=QUIET)
    latency = report["latency"]
    assert latency["kind"] == "chip_estimate" and latency["per_sample_s"] > 0
    assert latency["source"].startswith("analytic per-core model with SANA-FE")
    assert "SANA-FE declined" in latency["source"] and "> 100" in latency["source"]
    assert latency_source(kind="chip_estimate", source=latency["source"], device=latency["device"], samples=3,
                          batch_size=None).startswith("analytic per-core chip model")
    chip = report["chip_model"]
    assert chip["kind"] == "analytic" and chip["dynamic_energy_j"] is None
    assert chip["latency_per_sample_s"] == latency["per_sample_s"]
    split = report["energy_split"]
    assert split["kind"] == "estimated" and split["static_j"] > 0
    assert "analytic per-core model" in split["static_source"]
    assert "axon messages" in split["leaves_out"]  # no SANA-FE run prices them here
    assert split["static_j"] == pytest.approx(load_profile(report["backend"]["hw_config"]).si("static")
                                              * latency["per_sample_s"], rel=1e-9)
