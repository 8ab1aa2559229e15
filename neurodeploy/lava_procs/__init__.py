"""neurodeploy's own Lava processes.

Each lives alone in this folder because Lava's compiler looks for a Process's models by executing every
module next to it (``ProcGroupDiGraphs._find_proc_models``); nothing else may sit here.
"""
