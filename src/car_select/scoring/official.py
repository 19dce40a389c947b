"""The paper's released IQS checkpoint (a COMET / PyTorch-Lightning `.ckpt`) as a car-select model.

comet_checkpoint.read_checkpoint finds and checks the files (its docstring says what they hold); this
builds the encoder from its config and the checkpoint's weights, converts the layer mix and the
estimator into our QualityEstimator, and returns what Scorer.from_official_checkpoint wraps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..encoding.models import resolve_encoder_path
from ..errors import CarSelectError
from .comet_checkpoint import (
    CLASS_IDENTIFIER,
    ENCODER_PREFIX,
    HEAD_PREFIX,
    IGNORED_ENCODER_SUFFIXES,
    MIX_PREFIX,
    key_mismatch,
    read_checkpoint,
)
from .model import HeadConfig, QualityEstimator, ScoringHead

ENCODER_ENV = "CAR_SELECT_OFFICIAL_ENCODER"  # a local encoder folder (config + tokenizer) to use offline


@dataclass
class OfficialModel:
    """A COMET IQS checkpoint as our model, with what a Scorer needs around it."""

    model: QualityEstimator
    tokenizer: object
    encoder_name: str  # the checkpoint's pretrained_model
    max_length: int
    meta: dict


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_encoder_parts(source: str, where: str):
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_encoder_path(source)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - transformers raises OSError, ValueError, HF errors...
        raise CarSelectError(
            f"{where}: cannot load the encoder's config and tokenizer from {source!r} ({_one_line(exc)}); "
            f"with no network, pass encoder=... or set {ENCODER_ENV} to a local folder holding them"
        ) from None
    return config, tokenizer


def _build_encoder(config) -> nn.Module:
    """The encoder architecture with random weights (all of them are overwritten from the checkpoint)."""
    from transformers import AutoModel

    try:
        return AutoModel.from_config(config, add_pooling_layer=False)  # COMET's XLM-R has no pooler
    except TypeError:  # an architecture without a pooler option
        return AutoModel.from_config(config)


def _comet_max_length(config) -> int:
    """COMET truncates at encoder.max_positions - 2, and every COMET 2.x encoder (BERT included: they all
    inherit BERTEncoder's) reports max_positions = max_position_embeddings - 2: 510 tokens for XLM-R's
    514 positions, 508 for BERT's 512."""
    n = int(getattr(config, "max_position_embeddings", 514) or 514)
    return max(8, n - 4)


def _local_pretrained(pretrained: str, ckpt: Path) -> str:
    """`pretrained_model` as COMET would find it, or the same name in the model's own folder.

    COMET hands pretrained_model to transformers as is: a hub id, or a folder relative to the working
    directory. A model folder that carries its encoder's config and tokenizer beside hparams.yaml (as
    tests/scoring/data/comet_fixture does) is only self-contained if that name is also looked up there,
    wherever the process runs; an existing path keeps COMET's meaning.
    """
    if Path(pretrained).is_absolute() or Path(pretrained).exists():
        return pretrained
    for folder in (ckpt.parent, ckpt.parent.parent):  # where find_hparams looks; COMET: parents[1]
        candidate = folder / pretrained
        if candidate.is_dir():
            return str(candidate)
    return pretrained


def build_official_model(
    path: str | os.PathLike,
    encoder: str | os.PathLike | None = None,
    max_length: int | None = None,
) -> OfficialModel:
    """The model of the paper's COMET-style IQS checkpoint (`path`: the .ckpt, or a folder holding one).

    The encoder's architecture and tokenizer come from `encoder`, else the CAR_SELECT_OFFICIAL_ENCODER
    environment variable, else the checkpoint's `pretrained_model` (a Hugging Face id such as
    xlm-roberta-large: needs the network once, or a local folder, looked up in the working directory and
    then beside the checkpoint and its hparams.yaml). Its weights always come from the checkpoint.
    `max_length` defaults to COMET's truncation length (510 tokens for XLM-R).
    """
    contents = read_checkpoint(path)
    ckpt, h, pretrained, hidden_sizes = contents.ckpt, contents.hparams, contents.pretrained, contents.hidden_sizes
    enc_state, mix_state, head_state = contents.encoder_state, contents.mix_state, contents.head_state
    indices = range(contents.mix_weights)

    # -- encoder
    source = str(encoder) if encoder else os.environ.get(ENCODER_ENV) or _local_pretrained(pretrained, ckpt)
    config, tokenizer = _load_encoder_parts(source, str(ckpt))
    hidden = int(config.hidden_size)
    num_layers = int(config.num_hidden_layers) + 1
    if len(indices) < num_layers:
        raise CarSelectError(
            f"{ckpt}: missing state_dict key {MIX_PREFIX}scalar_parameters.{len(indices)} (the {source!r} encoder "
            f"has {num_layers} hidden states, layers + embeddings, but the layer mix has {len(indices)} weights)"
        )
    if len(indices) > num_layers:
        raise CarSelectError(
            f"{ckpt}: {len(indices)} layer-mix weights but the {source!r} encoder has {num_layers} hidden states "
            "(layers + embeddings)"
        )
    model_encoder = _build_encoder(config)
    own = model_encoder.state_dict()
    def ignorable(k: str) -> bool:  # the unused pooler and buffers transformers rebuilds itself
        return k.startswith("pooler.") or k.endswith(IGNORED_ENCODER_SUFFIXES)

    missing = sorted(k for k in own if k not in enc_state and not ignorable(k))
    unexpected = sorted(k for k in enc_state if k not in own and not ignorable(k))
    if missing or unexpected:
        raise CarSelectError(
            f"{ckpt}: the encoder weights do not match the {getattr(config, 'model_type', '?')} architecture of "
            f"{source!r}: {key_mismatch(ENCODER_PREFIX, missing, unexpected)}"
        )
    bad_shapes = [k for k in own if k in enc_state and tuple(own[k].shape) != tuple(enc_state[k].shape)]
    if bad_shapes:
        k = bad_shapes[0]
        raise CarSelectError(
            f"{ckpt}: {ENCODER_PREFIX}{k} has shape {tuple(enc_state[k].shape)} but the {source!r} architecture "
            f"needs {tuple(own[k].shape)} ({len(bad_shapes)} mismatched tensors)"
        )
    model_encoder.load_state_dict({k: v for k, v in enc_state.items() if k in own}, strict=False)

    weights = torch.cat([mix_state[f"scalar_parameters.{i}"].reshape(1).float() for i in range(num_layers)])
    if h["layer_transformation"] == "softmax":
        weights = torch.softmax(weights, dim=0)  # sparsemax(p) == p for p on the simplex: an exact conversion

    # -- estimator
    head_cfg = HeadConfig(
        hidden_size=hidden,
        num_layers=num_layers,
        hidden_sizes=hidden_sizes,
        activation=h["activations"],
        dropout=float(h["dropout"]),
        objective="regression",
        output_size=1,
    )
    head = ScoringHead(head_cfg)
    for k, v in head.estimator.ff.state_dict().items():
        if tuple(v.shape) != tuple(head_state[k].shape):
            hint = ""
            if k == "0.weight" and head_state[k].ndim == 2 and head_state[k].shape[1] != hidden:
                hint = (
                    f" (its input is {head_state[k].shape[1]} wide, not the encoder's {hidden}: a multi-input "
                    "COMET metric, not the one-input IQS)"
                )
            raise CarSelectError(
                f"{ckpt}: {HEAD_PREFIX}{k} has shape {tuple(head_state[k].shape)}, expected {tuple(v.shape)}{hint}"
            )
    head.estimator.ff.load_state_dict({k: v.float() for k, v in head_state.items()})
    with torch.no_grad():
        head.layerwise_attention.scalar_parameters.copy_(weights)
        head.layerwise_attention.gamma.copy_(mix_state["gamma"].reshape(1).float())

    model = QualityEstimator(model_encoder, head, train_encoder=True)  # the encoder was fine-tuned
    meta = {
        "source": "official-comet-checkpoint",
        "checkpoint": str(ckpt),
        "class_identifier": h.class_identifier or CLASS_IDENTIFIER,
        "layer_transformation": h["layer_transformation"],
    }
    if source != pretrained:
        meta["encoder_source"] = source
    return OfficialModel(model, tokenizer, pretrained, max_length or _comet_max_length(config), meta)
