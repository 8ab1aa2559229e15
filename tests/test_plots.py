"""Plots render from a report dict into valid PNG files."""

import numpy as np
import pytest

from neurodeploy.errors import UserError
from neurodeploy.reports import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _report(spread: float = 2.0):
    """A minimal report dict: two layers whose energies differ by ``spread``."""
    layers = [
        {"name": "fc0", "spike_rate": 0.05, "energy_by_op_j": {"synops": 1e-6, "neuron_updates": 4e-7}},
        {"name": "fc1", "spike_rate": 0.2,
         "energy_by_op_j": {"synops": 1e-6 / spread, "neuron_updates": 2e-7 / spread}},
    ]
    totals = {"synops": 1e-6 * (1 + 1 / spread), "neuron_updates": 4e-7 + 2e-7 / spread, "static": 1e-7}
    return {
        "model": {"family": "snn", "arch": "Input-512FC-10"},
        "backend": {"mode": "emulated"},
        "data": {"source": "synthetic"},
        "energy": {"kind": "estimated", "profile": "loihi2", "total_j": sum(totals.values()),
                   "by_op_j": totals, "uncounted": []},
        "layers": layers,
    }


def _is_png(path):
    data = path.read_bytes()
    return data.startswith(PNG_MAGIC) and len(data) > 2000


def test_spike_rate_plot(tmp_path):
    assert _is_png(plots.plot_spike_rates(_report(), tmp_path / "rate.png"))


@pytest.mark.parametrize("spread", [2.0, 1e4])  # stacked linear bars, and side-by-side log bars
def test_energy_plot(tmp_path, spread):
    assert _is_png(plots.plot_energy_breakdown(_report(spread), tmp_path / "energy.png"))


def test_raster_saved_and_plotted(tmp_path):
    rng = np.random.default_rng(1)
    raster = {"fc0": rng.random((3000, 15)) < 0.05, "fc1": rng.random((10, 15)) < 0.3}
    npz = plots.save_raster(raster, tmp_path / "raster.npz", sample_index=7, label=3, prediction=5, dt_ms=10)
    with np.load(npz) as saved:
        assert set(saved.files) == {"fc0", "fc1", "sample_index", "label", "prediction", "time_ms"}
        assert np.array_equal(saved["fc1"], raster["fc1"])
        assert (int(saved["sample_index"]), int(saved["label"]), int(saved["prediction"])) == (7, 3, 5)
        assert saved["time_ms"][0] == 10 and saved["time_ms"][-1] == 150  # the time axis is in ms
    assert _is_png(plots.plot_raster(raster, tmp_path / "raster.png", title="one sample", dt_ms=10))
    with pytest.raises(ValueError, match="neurons, T"):
        plots.save_raster({"bad": np.zeros(5)}, tmp_path / "bad.npz", sample_index=0, label=0, prediction=0,
                          dt_ms=1)


def test_accuracy_vs_energy(tmp_path):
    rows = [{"label": "snn", "accuracy": 0.9, "energy_j": 1e-4, "energy_kind": "estimated",
             "mode": "emulated"},
            {"label": "lstm", "accuracy": 0.95, "energy_j": 0.2, "energy_kind": "measured", "mode": "float"},
            {"label": "no energy", "accuracy": 0.5, "energy_j": None}]
    assert _is_png(plots.plot_accuracy_vs_energy(rows, tmp_path / "acc.png"))
    with pytest.raises(UserError, match="nothing to plot"):
        plots.plot_accuracy_vs_energy(rows[2:], tmp_path / "none.png")
