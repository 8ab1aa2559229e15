"""Check, before any training, that an SNN architecture deploys: every layer maps onto something lava-dl's
netx loader and Lava execute, and the network fits the chip described by a hardware profile.

Layer mappings (what the export writes and Lava runs):

- ``nFC``            -> netx ``dense`` (Lava Dense + LIF)
- ``nC3``            -> netx ``conv`` (Lava Conv + LIF)
- ``MPk`` at input   -> event downsampling before the chip: max pooling of binary event frames is a logical
                        OR over each k x k window, applied to the input spikes (off-chip, exact)
- ``APk`` inside     -> SLAYER ``Pool`` block (spiking, fixed weights), exported as a netx ``conv`` with
                        stride k whose weights are the pool kernel on the channel diagonal, written grouped
                        (``snn.pool_conv_groups``; netx itself cannot load ``pool`` layers, docs/fixed_point.md)
- ``MPk`` inside     -> not deployable (no Loihi mapping for max over spikes with a trained function)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.table import Table

from neurodeploy.data.datasets import dataset_kind
from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import LayerFootprint, load_profile, map_resources
from neurodeploy.metrics.placement import arch_conv_shape
from neurodeploy.models.arch import Architecture, ConvLayer, ConvLSTMLayer, DenseLayer, PoolLayer, resolve_arch
from neurodeploy.models.training import check_family_arch, input_shape_of


@dataclass(frozen=True)
class LintRow:
    """One architecture layer: how it maps, and what it needs of the chip."""

    name: str
    token: str
    mapping: str
    neurons: int
    fan_in: int
    synapses: int
    problem: str | None = None


@dataclass
class LintResult:
    arch: str
    input_shape: tuple[int, int, int]
    rows: list[LintRow]
    resources: object | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def first_problem(self) -> str:
        return self.problems[0] if self.problems else ""

    def to_dict(self) -> dict:
        return {
            "arch": self.arch, "input_shape": list(self.input_shape), "ok": self.ok, "problems": self.problems,
            "layers": [vars(row) for row in self.rows],
            "resources": self.resources.to_dict() if self.resources is not None else None,
        }


def _row(index: int, layer, in_shape, out_shape, first: bool) -> LintRow:
    name = f"{layer.kind}{index}"
    neurons = math.prod(out_shape)
    if isinstance(layer, DenseLayer):
        fan_in = math.prod(in_shape)
        return LintRow(name, layer.token(), "netx dense", neurons, fan_in, fan_in * neurons)
    if isinstance(layer, ConvLayer):
        fan_in = in_shape[0] * layer.kernel * layer.kernel
        return LintRow(name, layer.token(), "netx conv", neurons, fan_in, fan_in * neurons)
    if layer.mode == "max" and first:
        return LintRow(name, layer.token(), "input event downsampling (off-chip OR pooling)", 0, 0, 0)
    if layer.mode == "max":
        return LintRow(name, layer.token(), "none", neurons, 0, 0,
                       problem=f"layer {index} ({layer.token()}): max pooling inside a spiking network has no "
                               "Loihi mapping; use APk (average pooling) there")
    fan_in = layer.size * layer.size
    return LintRow(name, layer.token(), "SLAYER Pool -> netx conv (stride k, grouped channel-diagonal)",
                   neurons, fan_in, fan_in * neurons)


def _host_row(index: int, layer) -> LintRow:
    """A layer of an RSNN's host front end (up to the last ConvLSTM): it runs on torch, not on the chip."""
    problem = None
    if not isinstance(layer, (ConvLSTMLayer, PoolLayer)):
        problem = (f"layer {index} ({layer.token()}): the rsnn host front end (up to the last nCLk) holds only "
                   "ConvLSTM and pooling layers; move this layer behind the last nCLk")
    return LintRow(f"{layer.kind}{index}", layer.token(), "host front end (torch; --model rsnn, docs/rsnn.md)",
                   0, 0, 0, problem)


def lint_architecture(arch: Architecture, input_shape: tuple[int, int, int], hw: str | None = "loihi2") -> LintResult:
    """Map every layer and fit the network onto the chip of profile ``hw``. An architecture with ConvLSTM
    layers (nCLk) is an RSNN: the layers up to the last one run on the host and are not mapped."""
    shapes = arch.shapes(tuple(input_shape))
    last_host = max((i for i, layer in enumerate(arch.layers) if isinstance(layer, ConvLSTMLayer)), default=-1)
    rows = [_host_row(i, layer) if i <= last_host else _row(i, layer, s_in, s_out, i == 0)
            for i, (layer, (s_in, s_out)) in enumerate(zip(arch.layers, shapes))]
    result = LintResult(arch.notation(), tuple(input_shape), rows)
    result.problems.extend(row.problem for row in rows if row.problem)
    if hw:
        profile = load_profile(hw)
        footprints = [LayerFootprint(r.name, r.neurons, r.synapses, r.fan_in, conv=arch_conv_shape(layer, *shape))
                      for r, layer, shape in zip(rows, arch.layers, shapes) if r.neurons]
        resources = map_resources(footprints, profile)
        result.resources = resources
        if not resources.fits_one_board:
            result.problems.append(
                f"{arch.notation()} needs {resources.total_cores} cores = {resources.chips} chips, more than one "
                f"{profile.name} board ({resources.chips_per_board} chips); use fewer or smaller layers"
            )
    return result


def print_lint(result: LintResult, console) -> None:
    table = Table(title=f"lint {result.arch} (input {result.input_shape[1]}x{result.input_shape[2]}x"
                        f"{result.input_shape[0]})")
    for column in ("layer", "maps to", "neurons", "fan-in", "synapses", "cores"):
        table.add_column(column)
    cores = {}
    if result.resources is not None:
        cores = {layer.name: f"{layer.cores} ({layer.limited_by})" for layer in result.resources.layers}
    for row in result.rows:
        table.add_row(row.token, row.mapping if not row.problem else f"[red]{row.mapping}[/red]", str(row.neurons),
                      str(row.fan_in), str(row.synapses), cores.get(row.name, "-"))
    console.print(table)
    if result.resources is not None:
        res = result.resources
        console.print(f"{res.total_cores} cores, {res.chips} chip(s): fits one chip: {res.fits_one_chip}, "
                      f"fits one {res.chips_per_board}-chip board: {res.fits_one_board}")
    for problem in result.problems:
        console.print(f"[red]problem:[/red] {problem}")


def lint_for_training(config, console) -> LintResult:
    """Run at the start of ``train --model snn``: exit 2 (UserError) before training if it cannot deploy."""
    arch = resolve_arch(config.arch, config.dataset).arch
    input_shape = input_shape_of(dataset_kind(config.dataset).sensor_size)
    check_family_arch(config, arch, input_shape)  # lint alone would take nCLk layers for an rsnn's front end
    result = lint_architecture(arch, input_shape, "loihi2")
    if not result.ok:
        raise UserError(f"{arch.notation()} cannot be deployed: {result.first_problem()} "
                        f"(see `neurodeploy lint {config.arch}`)")
    res = result.resources
    console.print(f"lint: {arch.notation()} maps onto netx/Lava; {res.total_cores} Loihi 2 cores, "
                  f"fits one chip: {res.fits_one_chip}")
    return result
