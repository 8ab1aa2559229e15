"""bench --workload pilotnet: lava-dl's PilotNet LIF through the emulator and chip model beside Intel's measured
Loihi 2 figures (a cropped network in the fast suite, the full frame behind the slow mark)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.errors import UserError
from neurodeploy.pipeline.pilotnet import INTEL, run_pilotnet_benchmark

CONV_SYNAPSE_J = 24.0e-12  # sanafe/examples/loihi.yaml, loihi_conv_synapse energy_process_spike
runner = CliRunner()
KEYS = ("time_per_frame_s", "dynamic_energy_j", "static_power_w", "total_energy_j", "source")


@pytest.fixture(scope="module")
def cropped(lava_dl_netx_dir):
    result = runner.invoke(app, ["bench", "--workload", "pilotnet", "--layers", "2", "--crop-width", "40",
                                 "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_holds_intel_and_both_estimates_with_their_sources(cropped):
    intel, estimates = cropped["intel"], cropped["estimates"]
    assert set(estimates) == {"sana_fe", "op_count", "analytic"}
    for record in (intel, estimates["sana_fe"], estimates["op_count"], estimates["analytic"]):
        assert all(key in record for key in KEYS)
    assert intel["time_per_frame_s"] == 2.446e-3 and intel["dynamic_energy_j"] == pytest.approx(1.093544e-3)
    assert intel["spread"]["static_power_w"] == [0.178, 0.309] and "benchmark.ipynb" in intel["source"]
    assert estimates["op_count"]["time_per_frame_s"] is None  # no chip time of its own
    assert "cropped" in cropped["network"] and cropped["frame"]["layers"] == ["input_0", "conv_1"]


def test_sanafe_prices_exactly_the_synaptic_events_of_the_op_count(cropped):
    sana, ops = cropped["estimates"]["sana_fe"], cropped["estimates"]["op_count"]
    assert ops["synops"] > 0
    assert sana["dynamic_split_j"]["synapse"] == pytest.approx(ops["synops"] * CONV_SYNAPSE_J, rel=1e-9)
    frame = sana["time_per_frame_s"]
    assert frame > 0 and sana["frames_per_s"] == pytest.approx(1 / frame)
    assert sana["static_energy_j"] == pytest.approx(INTEL["static_power_w"] * frame)  # as fast as possible
    assert sana["total_energy_j"] == pytest.approx(sana["dynamic_energy_j"] + sana["static_energy_j"])
    assert sana["ratio_to_intel"]["dynamic_energy_j"] == pytest.approx(sana["dynamic_energy_j"] / 1.093544e-3)
    assert "0.178-0.309 W" in cropped["static_power"]


def test_the_analytic_time_prices_the_op_counts_energy_at_its_own_chip_time(cropped):
    analytic, ops = cropped["estimates"]["analytic"], cropped["estimates"]["op_count"]
    frame = analytic["time_per_frame_s"]
    assert frame > 0 and analytic["dynamic_energy_j"] == ops["dynamic_energy_j"]
    assert analytic["static_energy_j"] == pytest.approx(INTEL["static_power_w"] * frame)
    assert "no NoC congestion" in analytic["source"]


def test_frame_rate_sets_the_static_time(lava_dl_netx_dir):
    slow = run_pilotnet_benchmark(num_layers=2, crop_width=20, frame_rate=10.0)
    sana = slow["estimates"]["sana_fe"]
    assert slow["pacing"]["frame_time_s"] == pytest.approx(0.1) and "fixed frame rate" in slow["pacing"]["rule"]
    assert sana["static_energy_j"] == pytest.approx(INTEL["static_power_w"] * 0.1)
    with pytest.raises(UserError, match="frame-rate"):
        run_pilotnet_benchmark(num_layers=2, crop_width=20, frame_rate=0.0)


def test_without_lava_dl_the_bench_says_so(tmp_path):
    with pytest.raises(UserError, match="PilotNet LIF network.net"):
        run_pilotnet_benchmark(tmp_path)


@pytest.mark.slow
def test_full_frame_against_intel(lava_dl_netx_dir):
    result = run_pilotnet_benchmark()
    sana, ops = result["estimates"]["sana_fe"], result["estimates"]["op_count"]
    ratios = sana["ratio_to_intel"]
    assert sana["targets"]["dynamic_within_1.25x"], ratios
    assert 0.8 <= ops["ratio_to_intel"]["dynamic_energy_j"] <= 1.25
    assert np.isfinite(ratios["time_per_frame_s"]) and ratios["time_per_frame_s"] > 0


def test_a_narrow_crop_keeps_the_layers_that_still_have_columns(lava_dl_netx_dir):
    from neurodeploy.pipeline.pilotnet import crop_network, load_pilotnet, pilotnet_dir

    net, bias = load_pilotnet(pilotnet_dir(None))
    kept, _ = crop_network(net, bias, 40)  # the fifth convolution would have no column: the crop stops before it
    convs = [layer for layer in kept.layers if layer.kind == "conv"]
    assert len(convs) == 4 and all(min(layer.out_shape) >= 1 for layer in convs)
    with pytest.raises(UserError, match="crop width 1: the first convolution"):
        crop_network(net, bias, 1)
