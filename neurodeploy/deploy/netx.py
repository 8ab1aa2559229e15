"""lava-dl netx HDF5, the format's public names in one place: the records
(:mod:`neurodeploy.deploy.netx_records`), the reader (:mod:`neurodeploy.deploy.netx_read`) and the writers
(:mod:`neurodeploy.deploy.netx_write`). Code inside neurodeploy imports from those modules; this one keeps
``from neurodeploy.deploy.netx import load_netx`` working for scripts and notebooks.
"""

from __future__ import annotations

from neurodeploy.deploy.netx_read import NETX_REJECTS, SUPPORTED_HINT, SUPPORTED_LAYER_TYPES, load_netx
from neurodeploy.deploy.netx_records import (
    NETX_DEFAULT_VTH_MANT,
    NEURON_TYPES,
    CubaParams,
    NetxLayer,
    NetxNetwork,
)
from neurodeploy.deploy.netx_write import export_pool_as_conv, pool_conv_groups, write_netx, write_slayer_netx

__all__ = ["NETX_DEFAULT_VTH_MANT", "NETX_REJECTS", "NEURON_TYPES", "SUPPORTED_HINT", "SUPPORTED_LAYER_TYPES",
           "CubaParams", "NetxLayer", "NetxNetwork", "export_pool_as_conv", "load_netx", "pool_conv_groups",
           "write_netx", "write_slayer_netx"]
