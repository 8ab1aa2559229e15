"""A study file (YAML, ``studies/*.yaml``) as validated records, and the grid of cells it names.

A study trains every model entry (family, loss and SNN variant) at every ``dt_ms`` and seed; the number of
steps is either fixed (``steps``: the paper's T) or follows the fixed simulated length ``window_ms``
(T = window_ms / dt_ms, paper Tables XI-XII). Each trained model is evaluated at its own (dt, T) and at
every ``test.dt_ms`` (test-time variants, Table XII). ``scale`` picks one of ``scales`` (training size,
epochs, lr): the one line to edit to go from a quick run to the paper's settings. Every problem is a
:class:`UserError` naming the file and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from neurodeploy import options
from neurodeploy.backends import registry
from neurodeploy.data.datasets import dataset_kind
from neurodeploy.errors import UserError
from neurodeploy.safe_files import load_yaml
from neurodeploy.study.paper import PaperNumber, Rule, parse_paper_block

FAMILIES = ("snn", "rnn", "lstm", "rsnn", "ann", "converted", "tcnn")
SPIKING = ("snn", "rsnn", "converted")  # their spiking part runs on a chip backend
ONE_PASS = ("ann", "converted", "tcnn")  # trained with cross-entropy on one output per sample: no `loss`
FRAMES = ("binary", "intensity")  # ann on event data (Deng Models 4 / 5, docs/frames.md)
AGGREGATIONS = ("mean", "last", "sum", "stack")  # rsnn: the front end's T maps to one (docs/rsnn.md)
NORMS = ("max", "p99.9")  # converted: the normalisation of neurodeploy.pipeline.convert
DEFAULT_CONVERT_STEPS = 500  # Deng et al. Table 2: the converted SNN's (Model-2) window on MNIST
LOSSES = ("rate", "last")
TABLES = ("accuracy", "generalisation")
PLOTS = ("accuracy_vs_dt", "generalisation_drop", "accuracy_vs_energy")
MODEL_KEYS = ("family", "loss", "leak", "reset", "recurrent", "leak_tau_ms", "arch", "steps", "frames",
              "convert_steps", "norm", "aggregation")
SCALE_KEYS = ("epochs", "lr", "batch_size", "limit", "test_limit", "min_epochs", "plateau_pp", "plateau_window")
TEST_KEYS = ("dt_ms",)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # the study's folder: runs/study-<name>
MAX_TITLE_CHARS = 300
MAX_MODELS = 100
MAX_LIST_VALUES = 1000  # seeds, dt values: a grid larger than this is a typo, not a study
TOP_KEYS = ("name", "title", "dataset", "arch", "data_dir", "scale", "scales", "seeds", "dt_ms", "steps",
            "window_ms", "models", "test", "snn_backend", "max_failures", "tables", "plots", "paper",
            "paper_source")


@dataclass(frozen=True)
class ModelSpec:
    """One row of the paper's tables: a family with its loss and, for the SNN, a neuron variant."""

    name: str
    family: str
    loss: str = "rate"
    leak: bool = True
    reset: bool = True
    recurrent: bool = False
    leak_tau_ms: float | None = None
    arch: str | None = None  # this model's architecture instead of the study's (an rsnn needs nCLk layers)
    steps: int | None = None  # this model's T instead of the study's (a converted SNN: convert_steps)
    frames: str | None = None  # ann on event data: binary | intensity frames (Deng Models 4 / 5)
    norm: str | None = None  # converted: max | p99.9 (default max)
    aggregation: str | None = None  # rsnn: mean | last | sum | stack (default: train's, mean)

    @property
    def train_family(self) -> str:
        """The family of the training run: a converted cell trains an ANN (Deng Model-2) and converts it."""
        return "ann" if self.family == "converted" else self.family

    @property
    def run_family(self) -> str:
        """The family of the evaluated run folder: a converted cell evaluates its SNN of IF neurons."""
        return "snn" if self.family == "converted" else self.family

    @property
    def float_only(self) -> bool:
        """An SNN without reset: Lava's CUBA neuron always resets, so it runs in float (torch) only."""
        return self.family == "snn" and not self.reset

    @property
    def variant(self) -> str:
        """The SNN variant in words ('-' for rnn/lstm/tcnn; the frames of an ANN; a converted SNN's window)."""
        own_t = f", T={self.steps}" if self.steps and self.family != "converted" else ""
        if self.family == "ann":
            return (f"{self.frames} frames" if self.frames else "static images") + own_t
        if self.family == "converted":
            return f"IF neurons, T={self.steps}, norm {self.norm}"
        if self.family == "rsnn":
            return f"aggregation {self.aggregation or 'default'}" + own_t
        if self.family != "snn":
            return own_t[2:] or "-"
        parts = [f"leak {'on' if self.leak else 'off'}", f"reset {'on' if self.reset else 'off'}"]
        if self.recurrent:
            parts.append("recurrent")
        if self.leak_tau_ms is not None:
            parts.append(f"adaptive leak tau={self.leak_tau_ms:g} ms")
        return ", ".join(parts) + own_t

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "model"


@dataclass(frozen=True)
class Scale:
    """How much training each cell gets (``limit``/``test_limit`` None: the whole split).

    With ``plateau_pp`` the scale trains until converged: at least ``min_epochs``, at most ``epochs``, and
    it stops once the best test accuracy of the last ``plateau_window`` (fraction) of the epochs is less than
    ``plateau_pp`` points above the best before them (docs/study.md, "Converged scale").
    """

    epochs: int
    lr: float
    batch_size: int | None = None
    limit: int | None = None
    test_limit: int | None = None
    min_epochs: int | None = None
    plateau_pp: float | None = None
    plateau_window: float | None = None

    @property
    def until_converged(self) -> bool:
        return self.plateau_pp is not None

    def converged(self, test_accuracies: list[float]) -> bool:
        """The stopping rule on the test accuracy after each epoch so far (fractions)."""
        done = len(test_accuracies)
        if not self.until_converged or done < max(2, self.min_epochs or 2):
            return False
        window = max(2, math.ceil((self.plateau_window or 0.2) * done))
        if window >= done:
            return False
        before, last = max(test_accuracies[:-window]), max(test_accuracies[-window:])
        return last - before < self.plateau_pp / 100


@dataclass(frozen=True)
class TestPoint:
    """Where a trained model is evaluated: its own (dt, T) or a test-time variant."""

    dt_ms: float
    steps: int

    @property
    def label(self) -> str:
        return f"dt{self.dt_ms:g}-T{self.steps}"


@dataclass(frozen=True)
class Cell:
    """One training run of the grid and the points it is evaluated at (the first is its own)."""

    model: ModelSpec
    dt_ms: float
    steps: int
    seed: int
    tests: tuple[TestPoint, ...]

    @property
    def cell_id(self) -> str:
        return f"{self.model.slug}-dt{self.dt_ms:g}-T{self.steps}-s{self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "Cell":
        return cls(model=ModelSpec(**raw["model"]), dt_ms=raw["dt_ms"], steps=raw["steps"], seed=raw["seed"],
                   tests=tuple(TestPoint(**t) for t in raw["tests"]))


@dataclass(frozen=True)
class StudySpec:
    path: str
    name: str
    title: str
    dataset: str
    arch: str
    data_dir: str | None
    scale_name: str
    scale: Scale
    seeds: tuple[int, ...]
    dt_ms: tuple[float, ...]
    steps: int | None
    window_ms: float | None
    models: tuple[ModelSpec, ...]
    test_dt_ms: tuple[float, ...]
    snn_backend: str
    max_failures: int
    tables: tuple[str, ...]
    plots: tuple[str, ...]
    paper: tuple[PaperNumber, ...]
    paper_source: str | None
    raw: dict
    rules: tuple[Rule, ...] = ()  # the paper's findings as checkable rules (neurodeploy.study.paper)
    paper_note: str | None = None

    def steps_at(self, dt_ms: float) -> int:
        """T at ``dt_ms``: the fixed ``steps``, or round(window_ms / dt_ms) (at least 1); a model's own ``steps``
        (:attr:`ModelSpec.steps`) replaces it for that model's cells."""
        if self.steps is not None:
            return self.steps
        return max(1, round(self.window_ms / dt_ms))

    def cells(self) -> list[Cell]:
        """The grid: seeds x models x dt, in that order (seed outermost: a study stopped part-way has whole
        tables for its first seeds)."""
        cells = []
        for seed in self.seeds:
            for model in self.models:
                for dt in self.dt_ms:
                    own = TestPoint(dt, model.steps or self.steps_at(dt))
                    others = tuple(TestPoint(t, model.steps or self.steps_at(t)) for t in self.test_dt_ms if t != dt)
                    cells.append(Cell(model, dt, own.steps, seed, (own, *others)))
        return cells

    def paper_number(self, model: str, dt_ms: float, test_dt_ms: float) -> float | None:
        for number in self.paper:
            tested = number.test_dt_ms if number.test_dt_ms is not None else number.dt_ms
            if number.model == model and math.isclose(number.dt_ms, dt_ms) and math.isclose(tested, test_dt_ms):
                return number.accuracy
        return None


def load_study(path: Path) -> StudySpec:
    """Read and validate a study file; UserError naming the file and key on any problem."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such study file; pass one of studies/*.yaml")
    raw = load_yaml(path, "study file (not valid YAML or over our limits)", "fix the file; see docs/study.md")
    return parse_study(raw, str(path))


def parse_study(raw, path: str) -> StudySpec:
    """Validate the parsed YAML ``raw`` of the study file ``path``."""
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a study file is a mapping of keys (name, dataset, models, ...)")
    check = _Checker(path)
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        check.fail(unknown[0], f"unknown key; known keys: {', '.join(TOP_KEYS)}")
    scales = check.mapping(raw, "scales")
    scale_name = check.text(raw, "scale")
    if scale_name not in scales:
        check.fail("scale", f"'{scale_name}' is not one of scales ({', '.join(scales) or 'none'})")
    scale = _parse_scale(check, scales[scale_name], f"scales.{scale_name}")
    steps, window = raw.get("steps"), raw.get("window_ms")
    if (steps is None) == (window is None):
        check.fail("steps", "give exactly one of steps (fixed T) and window_ms (fixed T x dt)")
    models = _parse_models(check, check.mapping(raw, "models"))
    test = raw.get("test") or {}
    if not isinstance(test, dict):
        check.fail("test", "must be a mapping such as {dt_ms: [2, 1]}")
    unknown = sorted(set(test) - set(TEST_KEYS), key=str)
    if unknown:
        check.fail(f"test.{unknown[0]}", f"unknown key; known: {', '.join(TEST_KEYS)}")
    name = check.text(raw, "name")
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        check.fail("name", f"{name[:40]!r} names the study folder (runs/study-<name>): use 1 to 64 letters, digits, "
                           "'.', '_' or '-', starting with a letter or digit (no '/' or '..')")
    title = raw.get("title") or name
    if not isinstance(title, str) or len(title) > MAX_TITLE_CHARS:
        check.fail("title", f"must be text of at most {MAX_TITLE_CHARS} characters")
    paper, rules, note = parse_paper_block(check, raw.get("paper") or [], {m.name for m in models})
    spec = StudySpec(
        path=path,
        name=name,
        title=title,
        dataset=check.text(raw, "dataset"),
        arch=str(raw.get("arch", "mlp")),
        data_dir=str(raw["data_dir"]) if raw.get("data_dir") else None,
        scale_name=scale_name,
        scale=scale,
        seeds=tuple(check.numbers(raw, "seeds", int, minimum=0, option="--seed")),
        dt_ms=tuple(check.dt_values(raw, "dt_ms")),
        steps=check.steps(raw, "steps") if steps is not None else None,
        window_ms=check.window(raw, "window_ms") if window is not None else None,
        models=models,
        test_dt_ms=tuple(check.dt_values(test, "dt_ms", key="test.dt_ms", required=False)),
        snn_backend=check.choice(raw, "snn_backend", registry.names(in_studies=True), "emulator"),
        max_failures=int(check.positive_int(raw, "max_failures", default=1, minimum=0)),
        tables=tuple(check.choices(raw, "tables", TABLES)),
        plots=tuple(check.choices(raw, "plots", PLOTS)),
        paper=paper,
        paper_source=str(raw["paper_source"]) if raw.get("paper_source") else None,
        raw=raw,
        rules=rules,
        paper_note=note,
    )
    try:
        dataset_kind(spec.dataset)
    except UserError as exc:
        check.fail("dataset", str(exc))
    _check_grid(check, spec)
    return spec


def _check_grid(check: "_Checker", spec: StudySpec) -> None:
    """Every T within the CLI's limit, and one folder per cell and per test point: two models or dt values
    whose ids coincide (``SNN`` and ``snn``; dt 1 and 1.0000001, both ``dt1``) would share a folder."""
    for key, values in (("dt_ms", spec.dt_ms), ("test.dt_ms", spec.test_dt_ms)):
        for dt in values:
            steps = spec.steps_at(dt)
            if steps > options.MAX_STEPS:
                check.fail("window_ms", f"T = window_ms / dt = {steps} at {key} {dt:g} is more than "
                                        f"{options.MAX_STEPS} steps; use a shorter window_ms or a larger dt")
    static = dataset_kind(spec.dataset).read_frames is not None  # mnist: static images
    for model in spec.models:
        _check_model_data(check, model, spec.dataset, static)
    seen: dict[str, str] = {}
    for model in spec.models:
        if model.slug in seen:
            check.fail(f"models.{model.name}", f"its id '{model.slug}' is also the id of models.{seen[model.slug]} "
                                               "(ids keep letters and digits only); rename one")
        seen[model.slug] = model.name
    for key, values in (("dt_ms", spec.dt_ms), ("test.dt_ms", (*spec.dt_ms, *spec.test_dt_ms))):
        labels: dict[str, float] = {}
        for dt in values:
            label = TestPoint(dt, spec.steps_at(dt)).label
            if label in labels and labels[label] != dt:
                check.fail(key, f"{labels[label]!r} and {dt!r} share the folder name '{label}'; give dt values "
                                "that differ in their first 6 digits")
            labels[label] = dt


def _check_model_data(check: "_Checker", model: ModelSpec, dataset: str, static: bool) -> None:
    """The families that need static images (converted, an ANN without frames) or events (tcnn, frames)."""
    key = f"models.{model.name[:40]}"
    if model.family == "converted" and not static:
        check.fail(f"{key}.family", f"converted trains an ANN on static images (mnist), not on {dataset}")
    if model.family == "ann" and static and model.frames:
        check.fail(f"{key}.frames", f"{dataset} holds static images; frames are for event data")
    if model.family == "ann" and not static and not model.frames:
        check.fail(f"{key}.frames", f"an ann on {dataset} (events) needs frames: binary or intensity")
    if model.family == "tcnn" and static:
        check.fail(f"{key}.family", f"tcnn convolves over T frames of events; {dataset} holds static images")


def _parse_scale(check: "_Checker", raw, key: str) -> Scale:
    if not isinstance(raw, dict):
        check.fail(key, "must be a mapping of epochs, lr, batch_size, limit, test_limit")
    unknown = sorted(set(raw) - set(SCALE_KEYS))
    if unknown:
        check.fail(f"{key}.{unknown[0]}", f"unknown key; known: {', '.join(SCALE_KEYS)}")
    optional = {name: check.positive_int(raw, name, key=f"{key}.{name}", option=f"--{name.replace('_', '-')}")
                if raw.get(name) is not None else None for name in ("batch_size", "limit", "test_limit")}
    optional["min_epochs"] = check.positive_int(raw, "min_epochs", key=f"{key}.min_epochs", option="--epochs") \
        if raw.get("min_epochs") is not None else None
    optional.update({name: check.positive_float(raw, name, key=f"{key}.{name}") if raw.get(name) is not None
                     else None for name in ("plateau_pp", "plateau_window")})
    if optional["plateau_window"] is not None and optional["plateau_window"] >= 1:
        check.fail(f"{key}.plateau_window", f"is a fraction of the epochs in (0, 1) (got {optional['plateau_window']})")
    if optional["plateau_pp"] is None and (optional["min_epochs"] or optional["plateau_window"]):
        check.fail(f"{key}.plateau_pp", "missing: min_epochs and plateau_window belong to a converged scale")
    lr = check.positive_float(raw, "lr", key=f"{key}.lr")
    if lr > options.MAX_LR:
        check.fail(f"{key}.lr", f"{lr:g} is above {options.MAX_LR:g} (Adam steps that large only diverge)")
    return Scale(epochs=check.positive_int(raw, "epochs", key=f"{key}.epochs", option="--epochs"), lr=lr,
                 **optional)


def _parse_models(check: "_Checker", raw: dict) -> tuple[ModelSpec, ...]:
    if not raw:
        check.fail("models", "name at least one model, e.g. {SNN: {family: snn}}")
    if len(raw) > MAX_MODELS:
        check.fail("models", f"{len(raw)} models; a study has at most {MAX_MODELS}")
    models = []
    for name, entry in raw.items():
        key = f"models.{str(name)[:40]}"
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            check.fail(key, "a model's name is text of 1 to 64 characters (it becomes part of a folder name)")
        if not isinstance(entry, dict):
            check.fail(key, "must be a mapping such as {family: snn}")
        unknown = sorted(set(entry) - set(MODEL_KEYS))
        if unknown:
            check.fail(f"{key}.{unknown[0]}", f"unknown key; known: {', '.join(MODEL_KEYS)}")
        family = check.choice(entry, "family", FAMILIES, None, key=f"{key}.family")
        if family in ONE_PASS and entry.get("loss") is not None:
            check.fail(f"{key}.loss", f"a {family} is trained with cross-entropy on one output per sample; drop loss")
        loss = check.choice(entry, "loss", LOSSES, "rate", key=f"{key}.loss")
        flags = {flag: entry.get(flag, default) for flag, default in (("leak", True), ("reset", True),
                                                                      ("recurrent", False))}
        for flag, value in flags.items():
            if not isinstance(value, bool):
                check.fail(f"{key}.{flag}", f"must be true or false (got {value!r})")
        tau = check.positive_float(entry, "leak_tau_ms", key=f"{key}.leak_tau_ms") \
            if entry.get("leak_tau_ms") is not None else None
        arch = entry.get("arch")
        if arch is not None and (not isinstance(arch, str) or not arch.strip()):
            check.fail(f"{key}.arch", f"must be a model file name or an architecture string (got {arch!r})")
        steps = _model_steps(check, entry, family, key)
        frames = check.choice(entry, "frames", FRAMES, None, key=f"{key}.frames") if "frames" in entry else None
        if frames is not None and family != "ann":
            check.fail(f"{key}.frames", "frames (binary | intensity) are the input of family ann on event data")
        norm = None
        if family == "converted":
            norm = check.choice(entry, "norm", NORMS, NORMS[0], key=f"{key}.norm")
        elif "norm" in entry:
            check.fail(f"{key}.norm", "norm is the normalisation of family converted")
        aggregation = check.choice(entry, "aggregation", AGGREGATIONS, None, key=f"{key}.aggregation") \
            if "aggregation" in entry else None
        if aggregation is not None and family != "rsnn":
            check.fail(f"{key}.aggregation", "aggregation is how an rsnn's front end feeds its classifier")
        model = ModelSpec(str(name), family, loss, flags["leak"], flags["reset"], flags["recurrent"], tau, arch,
                          steps, frames, norm, aggregation)
        if family != "snn" and (not model.leak or not model.reset or model.recurrent or tau is not None):
            check.fail(key, "leak, reset, recurrent and leak_tau_ms are SNN variants; use them with family snn")
        if family in SPIKING and loss != "rate":
            check.fail(f"{key}.loss", "the SNN is trained with the rate-coding loss (eq. 10); use loss: rate")
        if tau is not None and not model.leak:
            check.fail(f"{key}.leak_tau_ms", "adaptive leakage needs leak: true")
        models.append(model)
    return tuple(models)


def _model_steps(check: "_Checker", entry: dict, family: str, key: str) -> int | None:
    """A model's own T: ``steps`` (any family but converted), or a converted SNN's window ``convert_steps``
    (default 500, Deng Table 2), which is the T its cells run at."""
    if family == "converted":
        if "steps" in entry:
            check.fail(f"{key}.steps", "a converted SNN's window is convert_steps (default "
                                       f"{DEFAULT_CONVERT_STEPS}); use that key")
        if entry.get("convert_steps") is None:
            return DEFAULT_CONVERT_STEPS
        return check.steps(entry, "convert_steps", key=f"{key}.convert_steps")
    if "convert_steps" in entry:
        check.fail(f"{key}.convert_steps", "convert_steps is the window of family converted; use steps")
    return check.steps(entry, "steps", key=f"{key}.steps") if entry.get("steps") is not None else None


class _Checker:
    """Typed reads of study-file keys; every failure names the file and the key."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, problem: str):
        raise UserError(f"{self.path}: key '{key}': {problem}")

    def _value(self, raw: dict, name: str, key: str | None, default=None, required=True):
        if raw.get(name) is None:
            if default is None and required:
                self.fail(key or name, "missing; see docs/study.md for the study file format")
            return default
        return raw[name]

    def text(self, raw: dict, name: str) -> str:
        value = self._value(raw, name, None)
        if not isinstance(value, str) or not value.strip():
            self.fail(name, f"must be a non-empty string (got {value!r})")
        return value

    def mapping(self, raw: dict, name: str) -> dict:
        value = self._value(raw, name, None)
        if not isinstance(value, dict):
            self.fail(name, f"must be a mapping (got {type(value).__name__})")
        return value

    def choice(self, raw: dict, name: str, allowed, default, key: str | None = None) -> str:
        value = self._value(raw, name, key, default)
        if value not in allowed:
            self.fail(key or name, f"'{value}' is not one of {', '.join(allowed)}")
        return value

    def choices(self, raw: dict, name: str, allowed) -> list[str]:
        values = raw.get(name) or []
        if not isinstance(values, list) or any(v not in allowed for v in values):
            self.fail(name, f"must be a list of {', '.join(allowed)} (got {values!r})")
        return values

    def _number(self, value, kind, key: str):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)) or (kind is int and value != int(value)):
            self.fail(key, f"must be {'an integer' if kind is int else 'a finite number'} (got {str(value)[:40]})")
        return kind(value)

    def _within(self, key: str, option: str | None, value) -> None:
        """The CLI's range of ``option`` (:mod:`neurodeploy.options`) applies to the study key as well."""
        if option is not None and not options.RANGES[option].contains(value):
            self.fail(key, f"{value} is out of range; give a value {options.RANGES[option].describe()} (as "
                           f"{option})")

    def positive_int(self, raw: dict, name: str, key: str | None = None, default=None, minimum: int = 1,
                     option: str | None = None) -> int:
        value = self._number(self._value(raw, name, key, default), int, key or name)
        if value < minimum:
            self.fail(key or name, f"must be at least {minimum} (got {value})")
        self._within(key or name, option, value)
        return value

    def steps(self, raw: dict, name: str, key: str | None = None) -> int:
        value = self.positive_int(raw, name, key=key)
        if value > options.MAX_STEPS:
            self.fail(key or name, f"{value} is out of range; give T from 1 to {options.MAX_STEPS} (as --steps)")
        return value

    def window(self, raw: dict, name: str) -> float:
        value = self.positive_float(raw, name)
        if value > options.MAX_DT_MS:
            self.fail(name, f"{value:g} ms is out of range; give at most {options.MAX_DT_MS:g} ms")
        return value

    def dt_values(self, raw: dict, name: str, key: str | None = None, required: bool = True) -> list[float]:
        values = self.numbers(raw, name, float, positive=True, key=key, required=required)
        for value in values:
            if not options.MIN_DT_MS <= value <= options.MAX_DT_MS:
                self.fail(key or name, f"{value:g} ms is out of range; give dt from {options.MIN_DT_MS} to "
                                       f"{options.MAX_DT_MS:g} ms (as --dt)")
        return values

    def positive_float(self, raw: dict, name: str, key: str | None = None) -> float:
        value = self._number(self._value(raw, name, key), float, key or name)
        if not value > 0 or not math.isfinite(value):
            self.fail(key or name, f"must be a positive number (got {value})")
        return value

    def numbers(self, raw: dict, name: str, kind, *, positive: bool = False, minimum: int | None = None,
                key: str | None = None, required: bool = True, option: str | None = None) -> list:
        key = key or name
        values = raw.get(name)
        if values is None and not required:
            return []
        values = values if isinstance(values, list) else [values]
        if not values or values == [None]:
            self.fail(key, "missing; give a list such as [1, 2, 3]")
        if len(values) > MAX_LIST_VALUES:
            self.fail(key, f"{len(values)} values; give at most {MAX_LIST_VALUES}")
        numbers = [self._number(v, kind, key) for v in values]
        for number in numbers:
            self._within(key, option, number)
        if positive and any(not v > 0 for v in numbers):
            self.fail(key, f"values must be positive (got {values})")
        if minimum is not None and any(v < minimum for v in numbers):
            self.fail(key, f"values must be at least {minimum} (got {values})")
        if len(set(numbers)) != len(numbers):
            self.fail(key, f"has repeated values {values}")
        return numbers
