"""The scorers shipped with the package, by name, and the forms `--scorer` (Config.scorer) takes.

Light (no torch): Config checks a scorer's name when it is built, before anything heavy loads.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from ..errors import SettingError

SCORERS_DIR = Path(__file__).resolve().parent.parent / "scorers"
# "default" (what a run uses unless told otherwise) and "car-paper" (the paper's IQS recipe,
# regression on the CaR expert revisions, over frozen MiniLM).
NAMED_SCORERS = {"default": SCORERS_DIR / "default", "car-paper": SCORERS_DIR / "car-paper"}
DEFAULT_SCORER_DIR = NAMED_SCORERS["default"]
REWARD_PREFIX = "hf-reward:"
SCORER_FORMS = ("default (the shipped scorer), car-paper (the paper's IQS recipe), hf-reward:MODEL (a Hugging "
                "Face reward model: hub id or folder), a scorer folder (train-scorer's output) or the paper's "
                "COMET .ckpt")


def check_scorer(spec: str | os.PathLike, field: str = "scorer") -> None:
    """A one-line SettingError unless `spec` is a shipped scorer's name, hf-reward:MODEL or an existing
    path; a misspelt name is answered with the nearest shipped one (car_paper: did you mean car-paper?)."""
    spec = os.fspath(spec)
    if spec.startswith(REWARD_PREFIX):
        if not spec[len(REWARD_PREFIX):].strip():
            raise SettingError("{} hf-reward: names no model; write hf-reward:MODEL (a hub id or a folder)", field)
        return
    if spec in NAMED_SCORERS or os.path.exists(spec):
        return
    near = difflib.get_close_matches(spec.lower(), list(NAMED_SCORERS), n=1, cutoff=0.6)
    shown = spec.replace("{", "{{").replace("}", "}}")
    raise SettingError(f"{{}} {shown}: no such scorer folder or .ckpt file, and not a shipped scorer's name "
                       f"({', '.join(NAMED_SCORERS)}) or hf-reward:MODEL"
                       + (f"; did you mean {near[0]}?" if near else ""), field)
