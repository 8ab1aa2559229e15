"""The studies' ``paper:`` blocks (the paper's numbers and findings as rules), the verdict of each rule on
measured results, and the converged scale's stopping rule. Pure Python: nothing is trained here.

The comparison with the team's copy of the paper tables reads ``../shared/PAPERS.md`` beside the repository
(or ``$NEURODEPLOY_PAPERS_MD``) and is skipped when neither exists: the repository does not depend on it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from neurodeploy.errors import UserError
from neurodeploy.reports.compare import ComparisonRow
from neurodeploy.study import paper as paper_rules
from neurodeploy.study.cell import StudyRow
from neurodeploy.study.results import study_markdown
from neurodeploy.study.runner import StudyOutcome
from neurodeploy.study.spec import load_study, parse_study

REPO = Path(__file__).resolve().parent.parent
STUDIES = sorted((REPO / "studies").glob("*.yaml"))

# PAPERS.md table heading -> study file, and the paper's column / row names -> the study's model names
PAPER_TABLES = {
    "He Table VI:": "table6", "He Table VII:": "table7", "He Table VIII:": "table8",
    "He Table IX:": "table9", "He Table XI:": "table11", "He Table XII:": "table12",
    "Deng Table 4:": "deng_table4", "Deng Table 5:": "deng_table5", "Deng Table 7:": "deng_table7",
    "RSNN Table 3:": "rsnn_table3",
}
# Deng / RSNN rows (as printed in PAPERS.md) -> the study's model; rows not listed are out of scope or quoted
# from other works and are not in the study's numbers (the study files say why). Value: (model, dt_ms).
DENG_ROWS = {
    "Deng Table 4:": {("MNIST", "MLP", "Model-1 (Natural ANN)"): "MLP Model-1 (natural ANN)",
                      ("MNIST", "MLP", "Model-2 (Converted SNN)^a"): "MLP Model-2 (converted SNN)",
                      ("MNIST", "MLP", "Model-3 (Enforced SNN)^a"): "MLP Model-3 (enforced SNN)",
                      ("MNIST", "CNN", "Model-1 (Natural ANN)"): "CNN Model-1 (natural ANN)",
                      ("MNIST", "CNN", "Model-2 (Converted SNN)^a"): "CNN Model-2 (converted SNN)",
                      ("MNIST", "CNN", "Model-3 (Enforced SNN)^a"): "CNN Model-3 (enforced SNN)"},
    "Deng Table 5:": {("N-MNIST", "MLP", "Model-4 (Enforced Binary ANN)"): "MLP Model-4 (binary-frame ANN)",
                      ("N-MNIST", "MLP", "Model-5 (Enforced Intensity ANN)"): "MLP Model-5 (intensity-frame ANN)",
                      ("N-MNIST", "MLP", "Model-6 (Natural SNN)"): "MLP Model-6 (natural SNN)",
                      ("N-MNIST", "CNN", "Model-4 (Enforced Binary ANN)"): "CNN Model-4 (binary-frame ANN)",
                      ("N-MNIST", "CNN", "Model-5 (Enforced Intensity ANN)"): "CNN Model-5 (intensity-frame ANN)",
                      ("N-MNIST", "CNN", "Model-6 (Natural SNN)"): "CNN Model-6 (natural SNN)"},
    "Deng Table 7:": {("RNN (this work)", "Input-128-10"): "RNN (this work)",
                      ("LSTM (this work)", "Input-128-10"): "LSTM (this work)",
                      ("Natural SNN (this work)", "Input-128-10"): "Natural SNN (MLP)",
                      ("Temporal CNN", "InputL-64C3-128C3-AP2-128C3-AP2-256FC-10"): "Temporal CNN",
                      ("Natural SNN (this work)", "InputL-64C3-128C3-AP2-128C3-AP2-256FC-10"): "Natural SNN (CNN)"},
    "RSNN Table 3:": {("Our RSNN(CL)",): "Our RSNN(CL)", ("SCNN (3layer)",): "SCNN (our plain SNN)"},
}
DENG_DT_MS = {"Deng Table 4:": 1.0, "Deng Table 5:": 3.0, "Deng Table 7:": 3.0, "RSNN Table 3:": 25.0}
# models whose paper value is UNREADABLE in the source (PAPERS.md, "Values that could not be read"): no number,
# and rules on them come from the paper's text, not checkable on its numbers
UNREADABLE = {"deng_table5": {"CNN Model-4 (binary-frame ANN)", "CNN Model-5 (intensity-frame ANN)"}}
FIVE = {"SNNs": "SNN", "Vanilla RNNs": "RNN (mainstream)", "LSTM": "LSTM (mainstream)",
        "Vanilla RNNs (Rate-Coding-inspired)": "RNN (rate coding)", "LSTM (Rate-Coding-inspired)": "LSTM (rate coding)"}
XII_ROWS = {"SNN": "SNN", "SNN (Adaptive Leakage)": "SNN + adaptive leakage",
            "SNN (Cross-Recurrence)": "SNN + recurrence", "Vanilla RNN (Rate-Coding-inspired)": "RNN",
            "LSTM (Rate-Coding-inspired)": "LSTM"}
IX_ROWS = {("✓", "✓"): "SNN (leak, reset)", ("✓", "✗"): "SNN (no reset)", ("✗", "✓"): "SNN (no leak)",
           ("✗", "✗"): "SNN (no leak, no reset)"}


def _papers_md() -> Path | None:
    for candidate in (os.environ.get("NEURODEPLOY_PAPERS_MD"), REPO.parent / "shared" / "PAPERS.md"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first markdown table after ``### heading``."""
    start = text.index(f"### {heading}")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [rows[0]] + rows[2:]  # header, then the body without the --- line


def _percent(cell: str) -> float:
    return round(float(cell.rstrip("%")) / 100, 6)


def _expected(heading: str, rows: list[list[str]]) -> set[tuple]:
    """{(model, dt, test_dt, accuracy)} as printed in PAPERS.md."""
    header, body = rows[0], rows[1:]
    found = set()
    if heading in DENG_ROWS:
        return _expected_deng(heading, body)
    if heading == "He Table XII:":
        tests = [float(h.rstrip("ms")) for h in header[1:]]
        for row in body:
            found |= {(XII_ROWS[row[0]], 3.0, t, _percent(v)) for t, v in zip(tests, row[1:])}
    elif heading == "He Table IX:":
        found = {(IX_ROWS[(row[0], row[1])], 7.5, 7.5, _percent(row[2])) for row in body}
    else:
        names = [FIVE.get(h, {"Vanilla RNNs (Rate-Coding-inspired)": "RNN (rate coding)"}.get(h, h))
                 for h in header[1:]]
        for row in body:
            dt = float(row[0].rstrip("ms"))
            found |= {(name, dt, dt, _percent(v)) for name, v in zip(names, row[1:])}
    return found


def _expected_deng(heading: str, body: list[list[str]]) -> set[tuple]:
    """The rows of a Deng / RSNN table that the study runs (DENG_ROWS), with the printed accuracy."""
    rows, dt = DENG_ROWS[heading], DENG_DT_MS[heading]
    found = set()
    for row in body:
        rsnn = heading == "RSNN Table 3:"  # columns DVS128Gesture, CIFAR10-DVS: the study runs the first
        key, cell = (tuple(row[:1]), row[1]) if rsnn else (tuple(row[:-1]), row[-1])
        if key not in rows or cell.startswith("UNREADABLE"):
            continue
        value = cell.split()[0]
        found.add((rows[key], dt, dt, _percent(value) if value.endswith("%") else round(float(value), 6)))
    return found


def test_every_study_file_has_a_paper_block_and_its_rules_hold_on_the_paper_numbers():
    assert {p.stem for p in STUDIES} == set(PAPER_TABLES.values())
    for path in STUDIES:
        spec = load_study(path)
        unreadable = UNREADABLE.get(path.stem, set())
        assert spec.paper and spec.rules, f"{path.name}: no paper numbers or rules"
        for model in spec.models:  # every row of the study has the paper's number at every dt it trains
            for dt in spec.dt_ms:
                number = spec.paper_number(model.name, dt, dt)
                assert (number is None) == (model.name in unreadable), (path.name, model.name, dt)
        for rule in spec.rules:  # a rule is the paper's finding: it must hold on the paper's own numbers
            expected = None if {rule.left.model, rule.right.model} & unreadable else True
            assert paper_rules.holds_on_paper(rule, spec.paper) is expected, (path.name, rule.claim)


def test_paper_blocks_equal_the_tables_in_papers_md():
    source = _papers_md()
    if source is None:
        pytest.skip("../shared/PAPERS.md is not beside the repository (set NEURODEPLOY_PAPERS_MD to check)")
    text = source.read_text()
    for heading, stem in PAPER_TABLES.items():
        spec = load_study(REPO / "studies" / f"{stem}.yaml")
        ours = {(n.model, n.dt_ms, n.test_dt_ms if n.test_dt_ms is not None else n.dt_ms, round(n.accuracy, 6))
                for n in spec.paper}
        assert ours == _expected(heading, _table(text, heading)), stem


# ---------------------------------------------------------------- verdicts on hand-made results

def _row(model: str, accuracy: float, seed: int, test_dt: float = 3.0, samples: int = 300) -> StudyRow:
    report = ComparisonRow(run="cells/x", report="cells/x/reports/torch/run_report.json", family="snn", arch="mlp",
                           dataset="nmnist", data_source="synthetic", backend="torch", mode="float",
                           device="cpu", accuracy=accuracy, params=1, memory_bits=1, synops_per_sample=0.0,
                           macs_per_sample=0.0, energy_j_per_sample=None, energy_kind=None, energy_profile=None,
                           latency_s_per_sample=None, samples=samples)
    return StudyRow(cell=f"{model}-s{seed}", model=model, loss="rate", variant="-", float_only=False, seed=seed,
                    train_dt_ms=3.0, train_steps=15, test_dt_ms=test_dt, test_steps=int(45 / test_dt),
                    own_point=test_dt == 3.0, epochs=4, train_limit=None, test_samples=samples, report=report,
                    train_samples=1000, stop_reason="plateau", cell_seconds=60.0)


def _tiny_spec(rules: list[dict]):
    raw = {"name": "tiny", "dataset": "nmnist", "scale": "s", "scales": {"s": {"epochs": 2, "lr": 0.001}},
           "seeds": [0, 1, 2], "dt_ms": [3], "window_ms": 45, "test": {"dt_ms": [1]},
           "models": {m: {"family": "rnn"} for m in ("A", "B", "C")}, "tables": ["generalisation"],
           "paper": {"source": "hand-made", "numbers": [
               {"model": "A", "dt_ms": 3, "accuracy": 0.98}, {"model": "B", "dt_ms": 3, "accuracy": 0.90},
               {"model": "C", "dt_ms": 3, "accuracy": 0.97},
               {"model": "A", "dt_ms": 3, "test_dt_ms": 1, "accuracy": 0.96},
               {"model": "B", "dt_ms": 3, "test_dt_ms": 1, "accuracy": 0.70}], "rules": rules}}
    return parse_study(raw, "tiny.yaml")


A_ABOVE_B = {"claim": "A beats B", "left": {"model": "A", "dt_ms": 3}, "op": ">", "right": {"model": "B", "dt_ms": 3}}
A_BELOW_B = {"claim": "A is below B", "left": {"model": "A", "dt_ms": 3}, "op": "<",
             "right": {"model": "B", "dt_ms": 3}}
A_ABOVE_C = {"claim": "A beats C", "left": {"model": "A", "dt_ms": 3}, "op": ">", "right": {"model": "C", "dt_ms": 3}}
A_LEVEL_C = {"claim": "A level with C", "left": {"model": "A", "dt_ms": 3}, "op": "within",
             "right": {"model": "C", "dt_ms": 3}, "tolerance_pp": 10}
DROPS = {"claim": "A loses less than B", "left": {"drop": "A", "dt_ms": 3, "to_dt_ms": 1}, "op": "<",
         "right": {"drop": "B", "dt_ms": 3, "to_dt_ms": 1}}


def _outcome():
    rows = []
    for seed, (a, b, c) in enumerate([(0.95, 0.60, 0.94), (0.96, 0.62, 0.96), (0.94, 0.61, 0.95)]):
        rows += [_row("A", a, seed), _row("B", b, seed), _row("C", c, seed),
                 _row("A", a - 0.02, seed, test_dt=1.0), _row("B", b - 0.30, seed, test_dt=1.0)]
    return StudyOutcome(rows, wall_s=10.0)


def _verdict(text: str, claim: str) -> str:
    line = next(line for line in text.splitlines() if f"{claim}." in line and line.startswith("- **"))
    return re.match(r"- \*\*(.+?)\*\*", line).group(1)


def test_verdict_lines_hold_fail_and_overlap():
    spec = _tiny_spec([A_ABOVE_B, A_BELOW_B, A_ABOVE_C, A_LEVEL_C, DROPS])
    text = study_markdown(spec, _outcome())
    assert "## The paper's findings: verdicts" in text
    assert _verdict(text, "A beats B") == "holds"  # 95% vs 61%: intervals far apart
    assert _verdict(text, "A is below B") == "does not hold"
    assert _verdict(text, "A beats C") == "inconclusive"  # 95.0% vs 95.0%: the intervals overlap
    assert _verdict(text, "A level with C") == "holds"
    assert _verdict(text, "A loses less than B") == "holds"  # 2 pp vs 30 pp
    assert "Summary: 3 holds, 1 does not hold, 1 inconclusive." in text
    # the numbers are printed: ours with the interval, and the rule on the paper's numbers
    line = next(line for line in text.splitlines() if "A beats B." in line)
    assert "A dt 3 ms 95.00 [" in line and "B dt 3 ms 61.00 [" in line and "In the paper's numbers: holds." in line
    below = next(line for line in text.splitlines() if "A is below B." in line)
    assert "In the paper's numbers: does not hold." in below
    # ours beside the paper's in the table, mean ± std over seeds
    assert "95.00% ± 1.00% (paper 98.00%)" in text
    # the scale record
    assert "Training samples per cell: 1000" in text and "stopped by plateau (9)" in text
    assert "cells per hour per worker" in text


def test_a_missing_cell_is_not_measured():
    spec = _tiny_spec([A_ABOVE_B])
    rows = [r for r in _outcome().rows if r.model != "B"]
    text = study_markdown(spec, StudyOutcome(rows))
    assert _verdict(text, "A beats B") == "not measured"


def test_interval_uses_pooled_samples_and_the_spread_over_seeds():
    one = paper_rules.accuracy_estimate([(0.9, 100)])
    pooled = paper_rules.accuracy_estimate([(0.9, 100)] * 4)
    assert one.low < 0.9 < one.high and pooled.high - pooled.low < one.high - one.low  # more samples: narrower
    spread = paper_rules.accuracy_estimate([(0.80, 1000), (0.90, 1000), (1.0, 1000)])
    assert spread.low < 0.66  # t interval over 3 seeds (std 0.1: +-0.25) dominates the Wilson interval (+-0.01)
    low, high = paper_rules.wilson(50, 100)
    assert abs(low - 0.4038) < 1e-3 and abs(high - 0.5962) < 1e-3


@pytest.mark.parametrize("change, key", [
    ({"op": "=="}, "paper.rules[0].op"),
    ({"left": {"model": "Z", "dt_ms": 3}}, "paper.rules[0].left.model"),
    ({"left": {"drop": "A", "dt_ms": 3}}, "paper.rules[0].left.to_dt_ms"),
    ({"claim": ""}, "paper.rules[0].claim"),
    ({"op": "within"}, "paper.rules[0].tolerance_pp"),
])
def test_a_bad_rule_names_the_file_and_key(change, key):
    with pytest.raises(UserError) as error:
        _tiny_spec([{**A_ABOVE_B, **change}])
    assert "tiny.yaml" in str(error.value) and f"'{key}'" in str(error.value)


# ---------------------------------------------------------------- the converged scale

def _scale(**extra):
    raw = {"name": "c", "dataset": "nmnist", "scale": "c", "scales": {"c": {"epochs": 30, "lr": 0.001, **extra}},
           "seeds": [0], "dt_ms": [3], "steps": 15, "models": {"S": {"family": "snn"}}}
    return parse_study(raw, "c.yaml").scale


def test_converged_scale_stops_when_the_test_accuracy_stops_rising():
    scale = _scale(min_epochs=5, plateau_pp=0.5, plateau_window=0.2)
    rising = [0.5, 0.6, 0.7, 0.75, 0.8, 0.82]
    assert scale.until_converged and not scale.converged(rising)  # +2 pp in the last 2 epochs
    flat = rising + [0.821, 0.819, 0.82]
    assert scale.converged(flat)  # last 2 epochs (20% of 9) within 0.5 pp of the best before
    assert not scale.converged([0.8, 0.8, 0.8])  # fewer than min_epochs
    assert not _scale().until_converged and not _scale().converged(flat)
    with pytest.raises(UserError, match="plateau_window"):
        _scale(plateau_pp=0.5, plateau_window=1.5)
    with pytest.raises(UserError, match="plateau_pp"):
        _scale(min_epochs=3)


def test_converged_cell_trains_epoch_by_epoch_and_records_why_it_stopped(tmp_path, tiny_nmnist):
    """A tiny RNN cell (float, no export): plateau_pp 100 stops at the first epoch where the rule can apply
    (3: a window of 2 and one epoch before it); a cap of 2 epochs stops at the cap. study.md records both."""
    from rich.console import Console

    from neurodeploy.study.cell import run_cell

    def study(cap: int):
        raw = {"name": "conv", "dataset": "nmnist", "arch": "Input-16FC-10", "data_dir": str(tiny_nmnist),
               "scale": "c", "scales": {"c": {"epochs": cap, "lr": 0.003, "batch_size": 10, "limit": 20,
                                             "test_limit": 10, "min_epochs": 2, "plateau_pp": 100}},
               "seeds": [0], "dt_ms": [5], "steps": 4, "models": {"RNN": {"family": "rnn", "loss": "last"}},
               "tables": ["accuracy"]}
        return parse_study(raw, "conv.yaml")

    console = Console(file=open(os.devnull, "w"))
    for cap, epochs, reason in ((6, 3, "plateau"), (2, 2, "max epochs")):
        spec = study(cap)
        out = tmp_path / f"cap{cap}"
        rows = run_cell(spec, spec.cells()[0], out, str(tiny_nmnist), console)
        assert (rows[0].epochs, rows[0].stop_reason, rows[0].train_samples) == (epochs, reason, 20)
        lines = (out / "cells" / rows[0].cell / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == epochs and rows[0].cell_seconds > 0
        text = study_markdown(spec, StudyOutcome(rows))
        assert f"stopped by {reason} (1)" in text and "trained until converged" in text


def test_a_cell_written_before_new_columns_still_reads():
    """cell.json of an older study lacks the newer columns (cost record, report columns with defaults)."""
    row = _row("A", 0.9, 0)
    old = {k: v for k, v in row.to_dict().items()
           if k not in ("train_samples", "stop_reason", "cell_seconds", "latency_device", "leaves_out")}
    back = StudyRow.from_dict(old)
    assert back.report.accuracy == 0.9 and back.train_samples is None and back.stop_reason is None
