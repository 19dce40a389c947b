"""Write a car-select scorer as the paper's COMET IQS checkpoint (the layout comet_checkpoint.py reads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import yaml

from ..atomic import atomic_path
from ..errors import CarSelectError
from .comet_checkpoint import CLASS_IDENTIFIER, COMET_ENCODER_NAMES, ENCODER_PREFIX, HEAD_PREFIX, LIGHTNING_VERSION, MIX_PREFIX

if TYPE_CHECKING:  # annotations only: the scorer module loads official checkpoints through this package
    from .scorer import Scorer


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").clone().contiguous()


def write_official_style_checkpoint(scorer: "Scorer", directory: str | os.PathLike) -> Path:
    """Write `scorer` in the official COMET layout: directory/checkpoints/model.ckpt + directory/hparams.yaml.

    The .ckpt is a Lightning-style dict of tensors and plain Python values only (torch.load with
    weights_only=True reads it), so both Scorer.from_official_checkpoint and COMET's own load_from_checkpoint
    (with the CaR fork's InstructionMetric) accept it. Returns the .ckpt path.
    """
    cfg = scorer.head_config
    if cfg.objective == "triplet" or cfg.output_size != 1:
        raise CarSelectError(
            f"cannot export a {cfg.objective!r} scorer with {cfg.output_size} outputs as a COMET IQS "
            "checkpoint: it needs a one-score head"
        )
    directory = Path(directory)
    (directory / "checkpoints").mkdir(parents=True, exist_ok=True)

    state: dict[str, torch.Tensor] = {}
    for key, value in scorer.model.encoder.state_dict().items():
        if key.startswith("pooler."):  # COMET builds its encoder without the pooler
            continue
        state[ENCODER_PREFIX + key] = _plain(value)
    mix = scorer.model.head.layerwise_attention
    for i, w in enumerate(mix.scalar_parameters.detach().reshape(-1)):
        state[f"{MIX_PREFIX}scalar_parameters.{i}"] = _plain(w.reshape(1))
    state[f"{MIX_PREFIX}gamma"] = _plain(mix.gamma.reshape(1))
    n = mix.scalar_parameters.numel()
    if cfg.dropout:  # COMET's LayerwiseAttention registers these buffers when dropout > 0
        state[f"{MIX_PREFIX}dropout_mask"] = torch.zeros(n)
        state[f"{MIX_PREFIX}dropout_fill"] = torch.full((n,), -1e20)
    for key, value in scorer.model.head.estimator.ff.state_dict().items():
        state[HEAD_PREFIX + key] = _plain(value)

    model_type = getattr(scorer.model.encoder.config, "model_type", "")
    hparams = {
        "nr_frozen_epochs": 0.3,
        "keep_embeddings_frozen": True,
        "optimizer": "AdamW",
        "warmup_steps": 0,
        "encoder_learning_rate": 1.0e-06,
        "learning_rate": 1.5e-05,
        "layerwise_decay": 0.95,
        "encoder_model": COMET_ENCODER_NAMES.get(model_type, "BERT"),
        "pretrained_model": str(scorer.encoder_name),
        "pool": "avg",
        "layer": "mix",
        "layer_transformation": "sparsemax",
        "layer_norm": False,
        "loss": "mse",
        "dropout": float(cfg.dropout),
        "batch_size": 8,
        "train_data": None,
        "validation_data": None,
        "hidden_sizes": [int(s) for s in cfg.hidden_sizes],
        "activations": str(cfg.activation),
        "final_activation": None,
        "load_pretrained_weights": True,
        "class_identifier": CLASS_IDENTIFIER,
    }
    checkpoint = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": LIGHTNING_VERSION,
        "state_dict": state,
        "hyper_parameters": dict(hparams),
    }
    ckpt = directory / "checkpoints" / "model.ckpt"
    with atomic_path(ckpt) as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(directory / "hparams.yaml") as tmp:
        Path(tmp).write_text(yaml.safe_dump(hparams, sort_keys=False), encoding="utf-8")
    return ckpt
