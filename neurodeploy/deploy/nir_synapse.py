"""A composed stateless NIR path (Affine, Linear, Scale, Conv, pooling, Flatten) as one netx synapse: a
convolution when the composition is one (found by probing with impulses and verified on random inputs),
else a dense matrix over C-order flattened inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import nir
import numpy as np
import torch

from neurodeploy.deploy.netx_write import pool_conv_groups
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import ConvGeometry
from neurodeploy.models.nir_reference import FlatGraph, static_forward

MAX_DENSE_WEIGHTS = 20_000_000


@dataclass(frozen=True)
class Synapse:
    """A composed stateless path as one linear map plus a constant: dense (out, in) or conv."""

    kind: str  # dense | conv
    weight: np.ndarray  # dense (n_out, n_in); conv (C_out, C_in/groups, kH, kW)
    bias: np.ndarray  # per output neuron (dense) or per output channel (conv)
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    geometry: ConvGeometry | None = None


def _forward(graph: FlatGraph, chain: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    for name in chain:
        node = graph.nodes[name]
        try:
            x = static_forward(name, node, x)
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:  # torch on parameters that do not fit
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise UserError(f"NIR node '{name}' ({type(node).__name__}): its parameters do not fit its input "
                            f"{tuple(x.shape[1:])} ({type(exc).__name__}: {detail[:160]}); write the graph "
                            "again") from exc
    return x


def _conv_candidate(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...]):
    """Geometry (kernel, stride, padding, groups) of a pool/conv/scale path, or None if it is not one."""
    if len(in_shape) != 3 or not chain:
        return None
    kernel, stride, padding, jump = [1, 1], [1, 1], [0, 0], [1, 1]
    convs = 0
    groups = None
    for name in chain:
        node = graph.nodes[name]
        if isinstance(node, (nir.Scale, nir.Input, nir.Output)):
            continue
        if isinstance(node, nir.Conv2d):
            if isinstance(node.padding, str) or np.any(np.asarray(node.dilation) != 1):
                return None
            k = np.asarray(node.weight).shape[2:]
            s, p = np.asarray(node.stride).reshape(-1), np.asarray(node.padding).reshape(-1)
            convs += 1
            groups = int(node.groups)
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            k = np.asarray(node.kernel_size).reshape(-1)
            s, p = np.asarray(node.stride).reshape(-1), np.asarray(node.padding).reshape(-1)
        else:
            return None
        for axis in (0, 1):
            kk, ss, pp = int(k[min(axis, len(k) - 1)]), int(s[min(axis, len(s) - 1)]), int(p[min(axis, len(p) - 1)])
            kernel[axis] += (kk - 1) * jump[axis]
            padding[axis] += pp * jump[axis]
            jump[axis] *= ss
            stride[axis] = jump[axis]
    if convs > 1:
        groups = 1
    return tuple(kernel), tuple(stride), tuple(padding), groups


def _as_conv(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...],
             out_shape: tuple[int, ...]) -> Synapse | None:
    """The path as one convolution, found by probing it with impulses and verified on random inputs."""
    candidate = _conv_candidate(graph, chain, in_shape)
    if candidate is None or len(out_shape) != 3:
        return None
    kernel, stride, padding, groups = candidate
    c_in, height, width = in_shape
    c_out = out_shape[0]
    if groups is None:  # pooling and scaling only: channel-diagonal, as groups as Lava's Conv can hold
        if c_out != c_in:
            return None
        groups = pool_conv_groups(c_in)
    geometry = ConvGeometry(in_shape=tuple(in_shape), out_channels=c_out, kernel=kernel, stride=stride,
                            padding=padding, dilation=(1, 1), groups=groups)
    if geometry.out_shape != tuple(out_shape):
        return None
    rows = [r for r in range(out_shape[1]) if r * stride[0] - padding[0] >= 0
            and r * stride[0] - padding[0] + kernel[0] <= height]
    cols = [c for c in range(out_shape[2]) if c * stride[1] - padding[1] >= 0
            and c * stride[1] - padding[1] + kernel[1] <= width]
    if not rows or not cols:
        return None
    r0, c0 = rows[0], cols[0]
    probes = torch.zeros((c_in * kernel[0] * kernel[1], *in_shape), dtype=torch.float64)
    index = 0
    for channel in range(c_in):
        for a in range(kernel[0]):
            for b in range(kernel[1]):
                probes[index, channel, r0 * stride[0] - padding[0] + a, c0 * stride[1] - padding[1] + b] = 1.0
                index += 1
    with torch.no_grad():
        constant = _forward(graph, chain, torch.zeros((1, *in_shape), dtype=torch.float64))[0]
        response = _forward(graph, chain, probes)[:, :, r0, c0] - constant[:, r0, c0]
    full = response.T.reshape(c_out, c_in, kernel[0], kernel[1])
    per_group_in, per_group_out = c_in // groups, c_out // groups
    weight = torch.stack([full[o, (o // per_group_out) * per_group_in:(o // per_group_out + 1) * per_group_in]
                          for o in range(c_out)])
    bias = constant[:, 0, 0]
    rng = np.random.default_rng(0)
    checks = torch.as_tensor(np.concatenate([(rng.random((2, *in_shape)) < 0.3), rng.normal(size=(2, *in_shape))]))
    with torch.no_grad():
        expected = _forward(graph, chain, checks)
        got = torch.nn.functional.conv2d(checks, weight, bias, stride=stride, padding=padding, groups=groups)
    scale = float(expected.abs().max()) or 1.0
    if not torch.allclose(expected, got, rtol=0, atol=1e-9 * scale):
        return None
    return Synapse("conv", weight.numpy(), bias.numpy(), tuple(in_shape), tuple(out_shape), geometry)


def as_dense(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...], out_shape: tuple[int, ...],
              neuron: str) -> Synapse:
    """The path as a matrix over C-order flattened inputs and outputs (columns probed one input at a time)."""
    n_in, n_out = math.prod(in_shape), math.prod(out_shape)
    if n_in * n_out > MAX_DENSE_WEIGHTS:
        raise UserError(f"NIR node '{neuron}': the path into it composes to a {n_out} x {n_in} dense matrix, too "
                        "large to deploy; only pooling / 2-D convolution paths become netx conv layers")
    with torch.no_grad():
        constant = _forward(graph, chain, torch.zeros((1, *in_shape), dtype=torch.float64)).reshape(-1)
        columns = []
        for start in range(0, n_in, 1024):
            stop = min(start + 1024, n_in)
            basis = torch.zeros((stop - start, n_in), dtype=torch.float64)
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            columns.append(_forward(graph, chain, basis.reshape(-1, *in_shape)).reshape(stop - start, -1)
                           - constant)
    weight = torch.cat(columns).T.numpy()
    return Synapse("dense", weight, constant.numpy(), tuple(in_shape), (n_out,))


def compose_synapse(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...],
                    out_shape: tuple[int, ...], neuron: str) -> Synapse:
    """A netx conv when the path is a convolution, else dense."""
    with torch.no_grad():
        produced = tuple(_forward(graph, chain, torch.zeros((1, *in_shape), dtype=torch.float64)).shape[1:])
    if math.prod(produced) != math.prod(out_shape):
        raise UserError(f"NIR node '{neuron}': receives {produced} values but has {tuple(out_shape)} neurons")
    if produced == tuple(out_shape):
        conv = _as_conv(graph, chain, in_shape, out_shape)
        if conv is not None:
            return conv
    return as_dense(graph, chain, in_shape, out_shape, neuron)

