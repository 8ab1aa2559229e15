"""info.py: dataset description record and the contrast heat-map."""

import json

import numpy as np
import pytest

from neurodeploy.data.datasets import DATASETS, resolve_dataset
from neurodeploy.data.info import DatasetInfo, dataset_info, plot_contrast
from neurodeploy.data.synthetic_nmnist import generate_synthetic_nmnist


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = generate_synthetic_nmnist(tmp_path_factory.mktemp("info") / "n", train_per_class=2, test_per_class=1)
    return resolve_dataset("nmnist", root, allow_synthetic=False)


def test_dataset_info_record(source):
    info = dataset_info(source, dt_ms=3.0, steps=15, limit=10)
    assert isinstance(info, DatasetInfo)
    assert info.samples == {"train": 20, "test": 10}
    assert info.samples_per_class["train"] == {str(d): 2 for d in range(10)}
    assert info.events.samples == 10 and 1000 < info.events.mean < 12000
    assert 250 < info.events.duration_ms_mean < 340
    assert sorted(info.density_by_dt) == list(DATASETS["nmnist"].defaults.paper_dt_ms)
    assert all(0 < density < 1 for density in info.density_by_dt.values())
    assert info.contrast.matrix.shape == (4, 4) and info.contrast.samples == 10
    np.testing.assert_allclose(np.diag(info.contrast.matrix), 0, atol=1e-12)  # binary frames
    assert info.contrast.mean > 0


def test_to_dict_is_json_and_records_provenance(source):
    record = dataset_info(source, dt_ms=7.0, steps=5, limit=4).to_dict()
    text = json.dumps(record, allow_nan=False)
    assert record["data"]["source"] == "synthetic" and "7" in record["frame_density_by_dt_ms"]
    assert json.loads(text)["temporal_contrast"]["window"] == 4


def test_plot_contrast_writes_a_png(tmp_path):
    path = plot_contrast(np.array([[0, 1.5], [1.5, 0]]), tmp_path / "plots" / "contrast.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["contrast.png"]
