"""The public Python API (docs/api.md): what ``import neurodeploy as nd`` offers, and what the CLI calls.

Functions raise :class:`UserError` (and its subclasses) for bad input, never ``SystemExit``, and print
nothing unless ``progress=True`` or an :class:`Output` asks for it.
"""

from neurodeploy.api.records import Comparison, Report, StudyResult
from neurodeploy.api.runs import (
    Output,
    Run,
    backend_choices,
    convert,
    default_run_dir,
    demo,
    export,
    open_run,
    run,
    train,
)
from neurodeploy.api.tools import (
    bench,
    compare,
    cost,
    dataset_info,
    generate_data,
    hardware_profile,
    hardware_profiles,
    import_nir,
    lint,
    parse_input_size,
    study,
)
from neurodeploy.errors import OptionError, RunFolderError, UserError
from neurodeploy.reports.schema import LayerReport

__all__ = [
    "Comparison", "LayerReport", "OptionError", "Output", "Report", "Run", "RunFolderError", "StudyResult",
    "UserError", "backend_choices", "bench", "compare", "convert", "cost", "dataset_info", "default_run_dir", "demo",
    "export", "generate_data", "hardware_profile", "hardware_profiles", "import_nir", "lint", "open_run",
    "parse_input_size", "run", "study", "train",
]
