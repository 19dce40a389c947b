"""The clustering embedder when it is not the scorer's own pass (`Config.embedder`, or a scorer whose
encoder is not all-MiniLM-L6-v2): a sentence-transformers model with its own pooling and
normalisation (mean, CLS, ... as its modules.json says), never remote code.

`SentenceEmbedder` has the slice of the Scorer interface FeatureExtractor uses for its embedder
(`score_and_embed`, `fingerprint`, `dtype`, `to`), so the feature cache and the multi-turn
aggregation work unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence

import numpy as np

from .errors import CarSelectError

HF_PREFIX = "hf://"
_HUB_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


def resolve_model_id(name: str, option: str = "embedder") -> str:
    """A local folder, the bundled all-MiniLM-L6-v2, or a Hugging Face hub id (`owner/name`, optionally
    written `hf://owner/name`): anything else is a one-line error, before any download is tried."""
    from .encoding.models import MINILM_NAMES, resolve_encoder_path

    if not isinstance(name, str) or not name.strip():
        raise CarSelectError(f"{option} must name a model folder or a Hugging Face id, got {name!r}")
    if name in MINILM_NAMES:
        return resolve_encoder_path(name)
    if name.startswith(HF_PREFIX):
        hub = name[len(HF_PREFIX):]
        if not _HUB_ID.match(hub) or ".." in hub:
            raise CarSelectError(f"{option} {name}: expected hf://owner/name (letters, digits, '.', '_', '-')")
        return hub
    if os.path.isdir(name):
        return name
    if os.path.exists(name):
        raise CarSelectError(f"{option} {name}: is a file; expected a sentence-transformers model folder")
    if _HUB_ID.match(name) and ".." not in name:
        return name
    raise CarSelectError(f"{option} {name}: no such folder, and not a Hugging Face id (owner/name)")


class SentenceEmbedder:
    """A sentence-transformers model, loaded with trust_remote_code=False."""

    def __init__(self, name: str, device: str = "cpu", max_length: int | None = None):
        self.name = name
        self.path = resolve_model_id(name)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise CarSelectError("embedder needs sentence-transformers: pip install 'sentence-transformers>=3.0'") from None
        try:
            self.model = SentenceTransformer(self.path, device=device, trust_remote_code=False)
        except (OSError, ValueError) as exc:  # not found offline, not a sentence-transformers folder, ...
            reason = " ".join(str(exc).split())[:300]
            raise CarSelectError(f"embedder {name}: cannot load it as a sentence-transformers model: {reason}") from None
        if max_length:
            self.model.max_seq_length = min(self.model.max_seq_length or max_length, max_length)

    @property
    def dtype(self):
        import torch

        return torch.float32  # embeddings in fp32: clustering is cheap beside the scorer's pass

    def to(self, device: str = "auto", precision: str = "auto") -> "SentenceEmbedder":
        from .encoding.device import resolve_device

        self.model.to(resolve_device(device))
        return self

    def eval_mode(self) -> "SentenceEmbedder":
        self.model.eval()
        return self

    def fingerprint(self, embedding_only: bool = True) -> str:
        """The weights, the modules (pooling, normalisation) and the sequence length."""
        from .encoding.fingerprints import weights_fingerprint

        h = hashlib.sha256(weights_fingerprint(self.path).encode())
        if os.path.isdir(self.path):
            for name in ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json"):
                p = os.path.join(self.path, name)
                if os.path.isfile(p):
                    with open(p, "rb") as fh:
                        h.update(fh.read())
        # "batches": texts of one token count per encode call (score_and_embed); padded batches gave other bits
        h.update(json.dumps({"max_seq_length": self.model.max_seq_length, "kind": "sentence-transformers",
                             "batches": "one-length"}).encode())
        return "st-" + h.hexdigest()[:32]

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text as the model's own tokenize() cuts them (what `encode` runs on)."""
        counts = []
        for start in range(0, len(texts), 4096):  # bounded memory: tokenize pads to the longest
            counts.extend(self.model.tokenize(list(texts[start:start + 4096]))["attention_mask"].sum(1).tolist())
        return np.asarray(counts, dtype=np.int64)

    def score_and_embed(self, texts: Sequence[str], batch_tokens: int = 16_384,
                        progress: Callable | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(zeros: an embedder gives no score, embeddings as the model pools them, tokens per text).
        `encode` pads each batch to its longest text, which changes a text's embedding with its
        neighbours: texts are encoded in groups of one token count, so nothing is padded and a text's
        embedding is the same bits whatever it is encoded with (as encoding/batching.py does)."""
        texts = list(texts)
        counts = self.token_counts(texts)
        emb = None
        for length in np.unique(counts)[::-1]:
            rows = np.flatnonzero(counts == length)
            part = self.model.encode([texts[i] for i in rows], batch_size=64, convert_to_numpy=True,
                                     show_progress_bar=False)
            if emb is None:
                emb = np.zeros((len(texts), part.shape[1]), dtype=np.float32)
            emb[rows] = part
        if emb is None:
            emb = np.zeros((0, self.model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        if progress is not None:
            progress(len(texts), int(counts.sum()))
        return np.zeros(len(texts), dtype=np.float32), emb, counts
