"""Timing on CPU for real; NVML through a fake ``pynvml`` module (no GPU on the test machines)."""

import sys
import types

import pytest
import torch

from neurodeploy.errors import UserError
from neurodeploy.metrics.gpu_energy import (
    EnergyMeter,
    EnergyUnavailable,
    InferenceMeasurement,
    NvmlEnergyCounter,
    measure_inference,
)


class FakeNVMLError(Exception):
    pass


def fake_pynvml(readings_mj, fail_energy=False, fail_init=False):
    """A stand-in for nvidia-ml-py: the energy counter returns ``readings_mj`` one after the other."""
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError
    module.calls = []
    readings = iter(readings_mj)

    def init():
        module.calls.append("init")
        if fail_init:
            raise FakeNVMLError("Driver Not Loaded")

    def energy(handle):
        assert handle == "handle-0"
        if fail_energy:
            raise FakeNVMLError("Not Supported")
        return next(readings)

    def by_uuid(uuid):
        raise FakeNVMLError("Not Found")

    module.nvmlInit = init
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetHandleByIndex = lambda index: f"handle-{index}"
    module.nvmlDeviceGetHandleByUUID = by_uuid
    module.nvmlDeviceGetTotalEnergyConsumption = energy
    return module


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))


BATCHES = [torch.rand(5, 3, 4), torch.rand(5, 3, 4), torch.rand(3, 3, 4)]


def test_cpu_timing_only():
    result = measure_inference(tiny_model(), BATCHES, "cpu", warmup_batches=1, min_duration_s=0)
    assert result.samples == 13 and result.batch_size == 5
    assert result.energy_j_per_sample is None and result.energy_kind is None
    assert result.latency_s_per_sample == pytest.approx(result.wall_s / 13)
    assert result.samples_per_s == pytest.approx(13 / result.wall_s)
    assert "threads" in result.device_name
    assert "no energy counter" in result.energy_note


def test_batches_may_be_labelled_and_are_repeated_up_to_min_duration():
    labelled = [(x, torch.zeros(len(x))) for x in BATCHES]
    result = measure_inference(tiny_model(), labelled, "cpu", warmup_batches=0, min_duration_s=0.05)
    assert result.wall_s >= 0.05 and result.samples % 13 == 0 and result.samples >= 13


def test_an_energy_figure_needs_its_kind():
    with pytest.raises(ValueError):
        InferenceMeasurement(1.0, 1.0, 1.0, None, "cpu", 1, 1.0, 1)


def test_nvml_energy_arithmetic(monkeypatch):
    module = fake_pynvml([10_000, 10_000, 17_500])  # read at open, at start, at end (mJ)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    result = measure_inference(tiny_model(), BATCHES, "cpu", warmup_batches=1, min_duration_s=0,
                               counter=NvmlEnergyCounter(index=0))
    assert result.energy_kind == "measured"
    assert result.energy_j_per_sample == pytest.approx(7.5 / 13)
    assert result.energy_note is None
    assert module.calls == ["init", "shutdown"]


def test_energy_meter_reports_joules_and_seconds(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([0, 1_000, 1_250]))
    with EnergyMeter("cpu", NvmlEnergyCounter(index=0)) as meter:
        pass
    assert meter.energy_j == pytest.approx(0.25) and meter.energy_kind == "measured"
    assert meter.wall_s >= 0


@pytest.mark.parametrize("end_mj,reason", [(100, "backwards"), (5_000, "did not advance")])
def test_counter_going_backwards_or_standing_still_is_not_a_measurement(monkeypatch, end_mj, reason):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([5_000, 5_000, end_mj]))
    with EnergyMeter("cpu", NvmlEnergyCounter(index=0)) as meter:
        pass
    assert meter.energy_j is None and meter.energy_kind is None and reason in meter.unavailable_reason


@pytest.mark.parametrize("kwargs,reason", [({"fail_energy": True}, "Volta"),
                                           ({"fail_init": True}, "did not start")])
def test_nvml_failures_fall_back_to_timing(monkeypatch, kwargs, reason):
    module = fake_pynvml([], **kwargs)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    result = measure_inference(tiny_model(), BATCHES, "cpu", min_duration_s=0, counter=NvmlEnergyCounter(0))
    assert result.energy_kind is None and reason in result.energy_note
    assert result.latency_s_per_sample > 0
    with pytest.raises(UserError, match=reason):
        measure_inference(tiny_model(), BATCHES, "cpu", min_duration_s=0, counter=NvmlEnergyCounter(0),
                          require_measured=True)
    if not kwargs.get("fail_init"):
        assert module.calls.count("init") == module.calls.count("shutdown")


def test_missing_bindings(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with pytest.raises(EnergyUnavailable, match="nvidia-ml-py"):
        NvmlEnergyCounter(0).open()


def test_cuda_asked_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="no CUDA"):
        measure_inference(tiny_model(), BATCHES, "cuda")


def test_no_batches():
    with pytest.raises(UserError, match="no batches"):
        measure_inference(tiny_model(), [], "cpu")


def test_idle_power_before_the_run_splits_board_energy(monkeypatch):
    module = fake_pynvml([0, 0, 50_000])  # 50 J over the run
    module.nvmlDeviceGetPowerUsage = lambda handle: 2_000  # mW before the run: 2 W idle
    monkeypatch.setitem(sys.modules, "pynvml", module)
    result = measure_inference(tiny_model(), BATCHES, "cpu", warmup_batches=0, min_duration_s=0.05,
                               counter=NvmlEnergyCounter(index=0))
    idle_j = 2.0 * result.wall_s
    assert result.idle_energy_j_per_sample == pytest.approx(idle_j / result.samples)
    assert result.idle_energy_j_per_sample < result.energy_j_per_sample
    without = fake_pynvml([0, 0, 50_000])  # no power reading: no split, never a made-up idle figure
    monkeypatch.setitem(sys.modules, "pynvml", without)
    result = measure_inference(tiny_model(), BATCHES, "cpu", min_duration_s=0, counter=NvmlEnergyCounter(index=0))
    assert result.energy_kind == "measured" and result.idle_energy_j_per_sample is None
