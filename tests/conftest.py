"""Shared fixtures: the real data folder (skip where absent) and a small scorer with a random head."""

import os

import pytest

from datapaths import REPO, SHARED_DATA, shared_file  # noqa: F401 (re-exported for fixtures)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def random_head_scorer_dir(tmp_path_factory):
    """all-MiniLM-L6-v2 (bundled, offline) with a seeded random head: real encoder, fast to build."""
    import torch

    from car_select.scoring.scorer import Scorer

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("scorer")
    Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [64]}).save(path)
    return str(path)
