"""neurodeploy: train, export and run spiking networks on Loihi-style chips, and compare with RNN/LSTM.

The public Python API (docs/api.md) is loaded on first use of one of its names, so ``import neurodeploy``
stays light (no torch, no Lava) and a torch-only path never imports Lava.
"""

import importlib

from neurodeploy.errors import OptionError, RunFolderError, UserError

__version__ = "0.1.0"

API = ("Comparison", "LayerReport", "Output", "Report", "Run", "StudyResult", "backend_choices", "bench",
       "compare", "convert", "cost", "dataset_info", "default_run_dir", "demo", "export", "generate_data",
       "hardware_profile", "hardware_profiles", "import_nir", "lint", "open_run", "parse_input_size", "run", "study",
       "train")
__all__ = ["OptionError", "RunFolderError", "UserError", "__version__", *API]


def __getattr__(name: str):
    """Module attribute hook (PEP 562): the API's names come from :mod:`neurodeploy.api` when first asked.

    All are bound at once, after the API's import: loading it binds the subpackage ``neurodeploy.study`` to
    this module's attribute ``study``, which must then be the function :func:`neurodeploy.api.study`."""
    if name in API:
        api = importlib.import_module("neurodeploy.api")
        globals().update({item: getattr(api, item) for item in API})
        return globals()[name]
    raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))
