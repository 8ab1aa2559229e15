"""``neurodeploy study``: the source paper's comparison grids, run by Ray Tune (see docs/study.md).

- :mod:`.spec`: the study file (YAML in ``studies/``) as records, validated, expanded into cells;
- :mod:`.cell`: one cell = one ordinary run folder (train, export + emulator run or torch run) plus its
  test-time variants, each again a run folder;
- :mod:`.runner`: the grid on Ray Tune (embedded or a cluster), resume, progress;
- :mod:`.results`: ``study.csv``, ``study.md`` and the plots from the cells' results.
"""
