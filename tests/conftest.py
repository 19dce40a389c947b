"""Shared fixtures: the real data folder (skip where absent) and a small scorer with a random head."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (tests on ../shared/data run in CI)")
    return path


@pytest.fixture(scope="session")
def random_head_scorer_dir(tmp_path_factory):
    """all-MiniLM-L6-v2 (bundled, offline) with a seeded random head: real encoder, fast to build."""
    import torch

    from car_select.scoring.scorer import Scorer

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("scorer")
    Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [64]}).save(path)
    return str(path)
