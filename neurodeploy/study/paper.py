"""A study file's ``paper:`` block (the paper's accuracies and its findings as checkable rules) and the verdict
of each rule on a study's measured results.

``paper:`` is either a list of numbers (the older form) or a mapping::

    paper:
      source: "He et al., Neural Networks 132 (2020), Table XII"
      numbers:                      # fractions; test_dt_ms defaults to dt_ms
        - {model: SNN, dt_ms: 3, test_dt_ms: 1, accuracy: 0.9601}
      rules:                        # one comparison each: left op right
        - claim: "the SNN loses less from 3 to 1 ms than the vanilla RNN"
          left: {drop: SNN, dt_ms: 3, to_dt_ms: 1}     # acc(dt 3, tested at 3) - acc(dt 3, tested at 1)
          op: "<"                                       # "<", ">" or "within" (with tolerance_pp)
          right: {drop: RNN, dt_ms: 3, to_dt_ms: 1}
      note: "..."                   # optional: where the paper's text and numbers disagree

A term is an accuracy ``{model, dt_ms[, test_dt_ms]}`` or a drop ``{drop: model, dt_ms, to_dt_ms}``.

**Intervals** (docs/study.md): an accuracy's 95% interval is the Wilson score interval on the test samples
pooled over seeds (correct = sum of accuracy x samples); with two or more seeds it is widened to cover the
Student t interval of the per-seed accuracies, so it holds both the test-sample and the seed-to-seed spread.
A drop's interval is interval arithmetic on its two accuracies ([lo_a - hi_b, hi_a - lo_b]), conservative
because the two share the test samples. **Verdicts**: ``a > b`` holds when a's interval lies wholly above
b's, does not hold when it lies wholly below, and is inconclusive when they overlap; ``within`` holds when the
difference's interval lies inside +-tolerance, does not hold when it lies wholly outside.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured"
OPS = ("<", ">", "within")
Z95 = 1.959964
# two-sided 95% Student t quantiles by degrees of freedom (seeds - 1)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       15: 2.131, 20: 2.086, 30: 2.042}


@dataclass(frozen=True)
class PaperNumber:
    """An accuracy the paper reports (fraction), for a model trained at ``dt_ms`` and tested at ``test_dt_ms``."""

    model: str
    dt_ms: float
    accuracy: float
    test_dt_ms: float | None = None


@dataclass(frozen=True)
class Term:
    """An accuracy (``drop_to_dt_ms`` None) or the drop acc(dt, dt) - acc(dt, drop_to_dt_ms) of one model."""

    model: str
    dt_ms: float
    test_dt_ms: float | None = None
    drop_to_dt_ms: float | None = None

    @property
    def label(self) -> str:
        if self.drop_to_dt_ms is not None:
            return f"drop {self.model} {self.dt_ms:g} -> {self.drop_to_dt_ms:g} ms"
        tested = self.test_dt_ms if self.test_dt_ms is not None else self.dt_ms
        at = f"dt {self.dt_ms:g}" + (f" tested at {tested:g}" if tested != self.dt_ms else "")
        return f"{self.model} {at} ms"


@dataclass(frozen=True)
class Rule:
    claim: str
    left: Term
    op: str
    right: Term
    tolerance_pp: float = 0.0


@dataclass(frozen=True)
class Estimate:
    """A measured value (fraction) and its 95% interval; ``seeds`` and ``samples`` it came from."""

    mean: float
    low: float
    high: float
    seeds: int
    samples: int

    def text(self) -> str:
        return f"{self.mean * 100:.2f} [{self.low * 100:.2f}, {self.high * 100:.2f}]"


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    outcome: str
    left: Estimate | None
    right: Estimate | None
    paper_holds: bool | None  # the rule on the paper's own numbers (None: a number is missing)

    def line(self) -> str:
        rule = self.rule
        op = f"within ±{rule.tolerance_pp:g} pp of" if rule.op == "within" else rule.op
        ours = (f"{rule.left.label} {self.left.text()} {op} {rule.right.label} {self.right.text()}"
                if self.left and self.right else "a cell is missing")
        paper = {True: "holds", False: "does not hold", None: "not checkable"}[self.paper_holds]
        return f"- **{self.outcome}**: {rule.claim}. Ours (%, 95% interval): {ours}. In the paper's numbers: {paper}."


def wilson(correct: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / n``."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def t_quantile(dof: int) -> float:
    known = [d for d in sorted(T95) if d <= dof]
    return T95[known[-1]] if known else T95[1]


def accuracy_estimate(samples: list[tuple[float, int]]) -> Estimate | None:
    """From (accuracy, test samples) per seed: the mean accuracy and its interval (module docstring)."""
    if not samples:
        return None
    n = sum(count for _, count in samples)
    correct = sum(acc * count for acc, count in samples)
    mean = statistics.fmean(acc for acc, _ in samples)
    low, high = wilson(correct, n)
    if len(samples) > 1:
        half = t_quantile(len(samples) - 1) * statistics.stdev(a for a, _ in samples) / math.sqrt(len(samples))
        low, high = min(low, mean - half), max(high, mean + half)
    return Estimate(mean, max(0.0, low), min(1.0, high), len(samples), n)


def term_estimate(term: Term, accuracies) -> Estimate | None:
    """``accuracies(model, dt, test_dt)`` -> Estimate or None; a drop by interval arithmetic."""
    if term.drop_to_dt_ms is None:
        tested = term.test_dt_ms if term.test_dt_ms is not None else term.dt_ms
        return accuracies(term.model, term.dt_ms, tested)
    a = accuracies(term.model, term.dt_ms, term.dt_ms)
    b = accuracies(term.model, term.dt_ms, term.drop_to_dt_ms)
    if a is None or b is None:
        return None
    return Estimate(a.mean - b.mean, a.low - b.high, a.high - b.low, min(a.seeds, b.seeds), min(a.samples, b.samples))


def decide(rule: Rule, left: Estimate | None, right: Estimate | None) -> str:
    if left is None or right is None:
        return NOT_MEASURED
    if rule.op == "within":
        low, high = left.low - right.high, left.high - right.low
        tol = rule.tolerance_pp / 100
        if -tol <= low and high <= tol:
            return HOLDS
        return FAILS if low > tol or high < -tol else INCONCLUSIVE
    above, below = (left, right) if rule.op == ">" else (right, left)
    if above.low > below.high:
        return HOLDS
    if above.high < below.low:
        return FAILS
    return INCONCLUSIVE


def paper_value(term: Term, numbers) -> float | None:
    def find(model, dt, tested):
        for number in numbers:
            number_tested = number.test_dt_ms if number.test_dt_ms is not None else number.dt_ms
            if number.model == model and math.isclose(number.dt_ms, dt) and math.isclose(number_tested, tested):
                return number.accuracy
        return None

    if term.drop_to_dt_ms is None:
        return find(term.model, term.dt_ms, term.test_dt_ms if term.test_dt_ms is not None else term.dt_ms)
    a, b = find(term.model, term.dt_ms, term.dt_ms), find(term.model, term.dt_ms, term.drop_to_dt_ms)
    return None if a is None or b is None else a - b


def holds_on_paper(rule: Rule, numbers) -> bool | None:
    """The rule on the paper's printed numbers (exact values, no interval)."""
    left, right = paper_value(rule.left, numbers), paper_value(rule.right, numbers)
    if left is None or right is None:
        return None
    if rule.op == "within":
        return abs(left - right) <= rule.tolerance_pp / 100 + 1e-12
    return left > right if rule.op == ">" else left < right


def verdicts(rules, numbers, accuracies) -> list[Verdict]:
    found = []
    for rule in rules:
        left, right = term_estimate(rule.left, accuracies), term_estimate(rule.right, accuracies)
        found.append(Verdict(rule, decide(rule, left, right), left, right, holds_on_paper(rule, numbers)))
    return found


# ---------------------------------------------------------------- reading the block

def parse_paper_block(check, raw, names: set[str]) -> tuple[tuple[PaperNumber, ...], tuple[Rule, ...], str | None]:
    """``paper:`` (a list of numbers, or a mapping of source, numbers, rules, note) -> (numbers, rules, note);
    ``check`` is the study file's checker (every problem names the file and key)."""
    if isinstance(raw, list):
        return _numbers(check, raw, names, "paper"), (), None
    if not isinstance(raw, dict):
        check.fail("paper", "must be a list of {model, dt_ms, accuracy[, test_dt_ms]} or a mapping of "
                            "source, numbers, rules, note")
    unknown = sorted(set(raw) - {"source", "numbers", "rules", "note"})
    if unknown:
        check.fail(f"paper.{unknown[0]}", "unknown key; known: source, numbers, rules, note")
    numbers = _numbers(check, raw.get("numbers") or [], names, "paper.numbers")
    rules_raw = raw.get("rules") or []
    if not isinstance(rules_raw, list):
        check.fail("paper.rules", "must be a list of {claim, left, op, right[, tolerance_pp]}")
    rules = tuple(_rule(check, entry, names, f"paper.rules[{i}]") for i, entry in enumerate(rules_raw))
    note = raw.get("note")
    return numbers, rules, str(note) if note else None


def _numbers(check, raw, names: set[str], key: str) -> tuple[PaperNumber, ...]:
    if not isinstance(raw, list):
        check.fail(key, "must be a list of {model, dt_ms, accuracy[, test_dt_ms]}")
    numbers = []
    for index, entry in enumerate(raw):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict) or entry.get("model") not in names:
            check.fail(f"{where}.model", f"must name one of the models ({', '.join(sorted(names))})")
        accuracy = check.positive_float(entry, "accuracy", key=f"{where}.accuracy")
        if accuracy > 1:
            check.fail(f"{where}.accuracy", f"is a fraction in [0, 1] (got {accuracy}); write 0.9901 for 99.01%")
        test_dt = check.positive_float(entry, "test_dt_ms", key=f"{where}.test_dt_ms") \
            if entry.get("test_dt_ms") is not None else None
        numbers.append(PaperNumber(entry["model"], check.positive_float(entry, "dt_ms", key=f"{where}.dt_ms"),
                                   accuracy, test_dt))
    return tuple(numbers)


def _term(check, raw, names: set[str], key: str) -> Term:
    if not isinstance(raw, dict):
        check.fail(key, "must be {model, dt_ms[, test_dt_ms]} or {drop: model, dt_ms, to_dt_ms}")
    drop = "drop" in raw
    allowed = {"drop", "dt_ms", "to_dt_ms"} if drop else {"model", "dt_ms", "test_dt_ms"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        check.fail(f"{key}.{unknown[0]}", f"unknown key; known: {', '.join(sorted(allowed))}")
    model = raw.get("drop" if drop else "model")
    if model not in names:
        check.fail(f"{key}.{'drop' if drop else 'model'}", f"must name one of the models ({', '.join(sorted(names))})")
    dt = check.positive_float(raw, "dt_ms", key=f"{key}.dt_ms")
    if drop:
        return Term(model, dt, drop_to_dt_ms=check.positive_float(raw, "to_dt_ms", key=f"{key}.to_dt_ms"))
    tested = check.positive_float(raw, "test_dt_ms", key=f"{key}.test_dt_ms") \
        if raw.get("test_dt_ms") is not None else None
    return Term(model, dt, tested)


def _rule(check, raw, names: set[str], key: str) -> Rule:
    if not isinstance(raw, dict):
        check.fail(key, "must be a mapping {claim, left, op, right[, tolerance_pp]}")
    unknown = sorted(set(raw) - {"claim", "left", "op", "right", "tolerance_pp"})
    if unknown:
        check.fail(f"{key}.{unknown[0]}", "unknown key; known: claim, left, op, right, tolerance_pp")
    claim = raw.get("claim")
    if not isinstance(claim, str) or not claim.strip():
        check.fail(f"{key}.claim", "must say the finding in words")
    op = raw.get("op")
    if op not in OPS:
        check.fail(f"{key}.op", f"must be one of {', '.join(OPS)} (got {op!r})")
    tolerance = check.positive_float(raw, "tolerance_pp", key=f"{key}.tolerance_pp") if op == "within" else 0.0
    return Rule(claim.strip(), _term(check, raw.get("left"), names, f"{key}.left"), op,
                _term(check, raw.get("right"), names, f"{key}.right"), tolerance)
