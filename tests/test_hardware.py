"""Hardware profiles (hw_configs/*.yaml) and resource mapping."""

import math

import numpy as np
import pytest
import yaml

from neurodeploy.errors import UserError
from neurodeploy.kernels.lava_limits import STATE_BITS, WEIGHT_BITS
from neurodeploy.metrics.hardware import (
    HardwareProfile,
    LayerFootprint,
    list_profiles,
    load_profile,
    map_resources,
    print_profile,
)
from neurodeploy.metrics.placement import ConvShape, spatial_tiles, tile_cores

SHIPPED = ("loihi1", "loihi2", "cmos45nm", "gpu_h100", "gpu_a100")


def test_shipped_profiles_are_listed():
    assert set(SHIPPED) <= set(list_profiles())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_and_cites_every_number(name):
    profile = load_profile(name)
    assert profile.name == name
    for section, entries in profile.coefficients.items():
        for key, coeff in entries.items():
            assert coeff.source.strip(), f"{name}: {section}.{key} has no source"
            assert coeff.unit


@pytest.mark.parametrize("name", SHIPPED)
def test_to_dict_round_trips(name):
    profile = load_profile(name)
    again = HardwareProfile.from_dict(profile.to_dict())
    assert again.to_dict() == profile.to_dict()


def test_loihi2_borrows_every_loihi1_energy_and_says_so():
    loihi1, loihi2 = load_profile("loihi1"), load_profile("loihi2")
    for key in ("synop", "neuron_update_active", "neuron_update_inactive", "spike_within_tile"):
        coeff = loihi2.coefficient(key)
        assert coeff.si == pytest.approx(loihi1.si(key))
        assert "Davies" in coeff.source
        assert "Loihi 1 figure" in coeff.note and "no Loihi 2 figure published" in coeff.note


def test_chip_bit_widths_are_the_ones_lava_computes_with():
    loihi2 = load_profile("loihi2")
    assert loihi2.bit_width("state_u") == loihi2.bit_width("state_v") == STATE_BITS
    assert loihi2.bit_width("weight") == WEIGHT_BITS
    assert not loihi2.has("time_per_step")  # value null: not published
    assert loihi2.coefficient("time_per_step").source == "not published"


def test_units_are_converted_to_si():
    loihi1 = load_profile("loihi1")
    memory = loihi1.coefficient("synaptic_memory_per_core")
    assert memory.unit == "KiB" and loihi1.si("synaptic_memory_per_core") == memory.value * 1024 * 8
    synop = loihi1.coefficient("synop")
    assert synop.unit == "pJ" and synop.si == pytest.approx(synop.value * 1e-12)


def test_cmos45nm_prices_a_synop_as_one_accumulate():
    cmos = load_profile("cmos45nm")
    assert cmos.si("synop") == cmos.si("add") < cmos.si("mac")
    assert "Horowitz" in cmos.coefficient("mac").source


def test_gpu_per_op_energy_is_tdp_over_peak_rate_and_labelled_derived():
    h100 = load_profile("gpu_h100")
    assert "derived" in h100.coefficient("mac").note
    assert h100.si("mac") == pytest.approx(h100.si("tdp") / (67e12 / 2), rel=0.01)  # 67 TFLOPS fp32, datasheet


def test_unknown_profile_lists_known_ones():
    with pytest.raises(UserError, match="known profiles: .*loihi2"):
        load_profile("loihi9")


def test_unknown_coefficient_names_the_ones_present():
    with pytest.raises(UserError, match="has no coefficient 'mac'"):
        load_profile("loihi2").coefficient("mac")


def _write(tmp_path, raw):
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


BASE = {"name": "custom", "title": "t", "kind": "neuromorphic",
        "energy": {"synop": {"value": 1.0, "unit": "pJ", "source": "test"}}}


def test_profile_loads_from_a_path(tmp_path):
    profile = load_profile(_write(tmp_path, BASE))
    assert profile.si("synop") == pytest.approx(1e-12)


@pytest.mark.parametrize("change, message", [
    ({"energy": {"synop": {"value": 1.0, "unit": "pJ", "source": ""}}}, "source"),
    ({"energy": {"synop": {"value": 1.0, "unit": "pJ"}}}, "value, unit and source"),
    ({"energy": {"synopp": {"value": 1.0, "unit": "pJ", "source": "x"}}}, "unknown key"),
    ({"energy": {"synop": {"value": 1.0, "unit": "W", "source": "x"}}}, "energy unit"),
    ({"energy": {"synop": {"value": -1.0, "unit": "pJ", "source": "x"}}}, "non-negative"),
    ({"energy": {"synop": {"value": "big", "unit": "pJ", "source": "x"}}}, "not a number"),
    ({"kind": "quantum"}, "kind"),
    ({"bits": {"weight": {"value": 7.5, "unit": "bit", "source": "x"}}}, "whole number"),
    ({"extra": 1}, "unknown top-level"),
])
def test_invalid_profiles_are_user_errors_naming_the_file(tmp_path, change, message):
    path = _write(tmp_path, {**BASE, **change})
    with pytest.raises(UserError, match=message) as info:
        load_profile(path)
    assert str(path) in str(info.value)


def test_map_resources_by_hand():
    """Loihi 1: 1,024 neurons, 128 KiB = 1,048,576 bits and 4,096 axons per core; 128 cores per chip."""
    layers = [
        # 512 neurons -> 1 core; 2312*512 synapses * 8 bit = 9,469,952 bit -> 10 cores; fan-in 1 core
        LayerFootprint("fc0", neurons=512, synapses=2312 * 512, fan_in=2312),
        LayerFootprint("fc1", neurons=10, synapses=5120, fan_in=512),
        # 3,000 neurons -> 3 cores; fan-in 5,000 -> 2 cores; 9-bit weights: 27,000 bit -> 1 core
        LayerFootprint("wide", neurons=3000, synapses=3000, fan_in=5000, weight_bits=9),
    ]
    result = map_resources(layers, load_profile("loihi1"))
    cores = [(r.cores, r.limited_by) for r in result.layers]
    assert cores == [(10, "memory"), (1, "neurons"), (3, "neurons")]
    assert result.layers[2].cores_by_fan_in == 2
    assert result.total_cores == 14
    assert (result.chips, result.boards, result.fits_one_chip, result.fits_one_board) == (1, 1, True, True)
    assert result.to_dict()["total_cores"] == 14


def test_map_resources_counts_chips_and_kapoho_point_boards():
    layer = LayerFootprint("huge", neurons=8192 * 1100, synapses=0, fan_in=1)
    result = map_resources([layer], load_profile("loihi2"))
    assert result.total_cores == 1100
    assert result.chips == math.ceil(1100 / 128) == 9
    assert result.boards == 2
    assert not result.fits_one_chip and not result.fits_one_board


def test_map_resources_needs_per_core_limits():
    with pytest.raises(UserError, match="no per-core limits"):
        map_resources([LayerFootprint("a", 1, 1, 1)], load_profile("gpu_h100"))


def test_footprint_validation():
    with pytest.raises(ValueError):
        LayerFootprint("a", neurons=-1, synapses=0, fan_in=0)


def test_print_profile_lists_sources():
    from rich.console import Console

    console = Console(record=True, width=300)
    print_profile(load_profile("loihi2"), console)
    text = console.export_text()
    assert "synop" in text and "Davies" in text and "not published" in text


def test_spatial_tiles_obey_every_per_core_limit_and_cover_the_layer():
    conv = ConvShape((24, 32, 99), (36, 15, 49), (3, 3), stride=(2, 2))  # PilotNet's second conv
    tiling = spatial_tiles(conv, neurons_per_core=1024, axons_per_core=4096, memory_bits_per_core=192 * 8192,
                           weight_bits=8)
    assert tiling.channel_groups == 1 and tiling.channels == 36  # every channel of a tile on one core
    assert 36 * tiling.tile_h * tiling.tile_w <= 1024
    rows_in = (tiling.tile_h - 1) * 2 + 3
    cols_in = (tiling.tile_w - 1) * 2 + 3
    assert tiling.axons_per_core == 24 * min(rows_in, 32) * min(cols_in, 99) <= 4096
    cores = tile_cores(tiling, conv.out_shape)
    assert cores.min() == 0 and cores.max() == tiling.cores - 1
    assert np.bincount(cores).max() <= 1024
    # a kernel too big for one core's memory splits the channels
    small_memory = spatial_tiles(conv, 1024, 4096, memory_bits_per_core=36 * 24 * 9 * 8 / 3, weight_bits=8)
    assert small_memory.channel_groups >= 3
