"""`neurodeploy bench` workloads at toy size: the test-set run and the conv-net Lava-vs-emulator ratio."""

from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.pipeline.bench import run_conv_benchmark, run_testset_benchmark


def test_testset_workload_times_a_first_and_a_cached_run_with_parity(tiny_nmnist):
    result = run_testset_benchmark(30, data_dir=tiny_nmnist, train_samples=20)
    assert result["samples"] == 30 and result["steps"] == 15
    assert result["data"] == "synthetic nmnist"
    assert result["spike_trains_identical"] is True
    assert result["accuracy"] == result["float_accuracy"]
    assert result["first_run_s"] > 0 and result["cached_run_s"] > 0 and result["cached_run_cpu_s"] > 0


def test_conv_workload_is_bit_exact_on_every_layer():
    result = run_conv_benchmark("Input-4C3-AP2-8C3-16FC-10", (2, 10, 10), samples=2, steps=8, density=0.2,
                                emulator_samples=6)
    assert result["workload"] == "conv" and result["bit_exact"] is True
    assert set(result["layer_mismatches"].values()) == {0} and len(result["layer_mismatches"]) == 5
    assert all(list(result["lava_layer_spikes"].values())[:-1])  # T=8: the output layer may stay silent
    assert result["samples"] == 2 and result["emulator_samples"] == 6
    assert result["ratio"] > 0


def test_unknown_workload_is_one_line_exit_2():
    outcome = CliRunner().invoke(app, ["bench", "--workload", "nope"])
    assert outcome.exit_code == 2
    assert "--workload" in outcome.output and "Traceback" not in outcome.output
