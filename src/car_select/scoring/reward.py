"""Any Hugging Face reward model as the quality scorer: `--scorer hf-reward:MODEL_OR_PATH`.

A sequence-classification model with one output (the kind reward-model leaderboards list: Skywork-Reward,
the OpenAssistant DeBERTa reward models, ...) scores each (prompt, response) exchange. The exchange is
rendered with the model's chat template where its tokenizer has one (a user turn with the instruction,
and the input after a blank line, then the assistant's response), else as the paper's
`Instruction: ... Response: ...` text. Texts are truncated to `max_length` tokens (default 1024; the
end of a long response is cut) and run through the same length-sorted, token-budget batches as our
encoder (`encoding.batching.run_batches`), on CPU or GPU.

The model gives no all-MiniLM-L6-v2 embedding, so FeatureExtractor runs the embedder in a second pass;
both outputs are cached under a key made of this model's fingerprint and the embedder's.

Decoder reward models read the score at the last real token (transformers pools at the rightmost
token that is not the pad id). Where a text ends with the pad id (eos used as pad), another pad id is
chosen for that call, so a padded score is the unpadded one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from ..encoding.batching import run_batches
from ..encoding.device import resolve_device, resolve_precision
from ..encoding.fingerprints import weights_fingerprint
from ..encoding.models import resolve_encoder_path
from ..errors import CarSelectError
from ..render import RESPONSE_MARK

PREFIX = "hf-reward:"
DEFAULT_MAX_LENGTH = 1024


def is_reward_spec(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def user_message(prompt: str) -> str:
    """The rendered prompt `Instruction: X[ Input: Y]` as a chat user turn: `X` or `X\\n\\nY`."""
    text = prompt[len("Instruction: "):] if prompt.startswith("Instruction: ") else prompt
    instruction, sep, inp = text.partition(" Input: ")
    return f"{instruction}\n\n{inp}" if sep else instruction


class RewardScorer:
    """The duck-typed scorer surface FeatureExtractor and eval-scorer use, over a reward model."""

    embeds_like_minilm = False
    objective = "reward"

    def __init__(self, name_or_path: str, model, tokenizer, max_length: int = DEFAULT_MAX_LENGTH):
        self.name_or_path = name_or_path
        self.encoder_name = name_or_path
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.meta: dict = {"kind": "hf-reward", "model": name_or_path}
        self.uses_chat_template = bool(getattr(tokenizer, "chat_template", None))

    @classmethod
    def load(cls, spec: str, max_length: int = DEFAULT_MAX_LENGTH) -> "RewardScorer":
        """`hf-reward:NAME_OR_PATH` (or the bare name or path)."""
        name = spec[len(PREFIX):] if is_reward_spec(spec) else spec
        if not name:
            raise CarSelectError(f"--scorer {spec}: name a model after {PREFIX!r}")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = resolve_encoder_path(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
            model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=False)
        except (OSError, ValueError) as e:
            raise CarSelectError(f"--scorer {spec}: cannot load a sequence-classification model: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if model.config.num_labels != 1:
            raise CarSelectError(f"--scorer {spec}: a reward model has one output; this one has "
                                 f"{model.config.num_labels} (num_labels)")
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return cls(name, model, tokenizer, max_length)

    # ---- identity -----------------------------------------------------------------------------
    def fingerprint(self, embedding_only: bool = False) -> str:
        """Changes with the model's weights and config, the tokenizer files, max length and rendering."""
        h = hashlib.sha256()
        h.update(f"hf-reward-{weights_fingerprint(self.name_or_path)}-{self.max_length}-"
                 f"{'chat' if self.uses_chat_template else 'plain'}".encode())
        if self.uses_chat_template:
            h.update(str(self.tokenizer.chat_template).encode())
        return h.hexdigest()[:32]

    def to(self, device: str = "auto", precision: str = "auto") -> "RewardScorer":
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        # On a GPU the weights are cast (memory); on CPU they stay fp32 and bf16 runs under autocast.
        self.model.to(self.device, dtype=self.dtype if self.device.type == "cuda" else torch.float32)
        return self

    # ---- inference ----------------------------------------------------------------------------
    def token_ids(self, prompts: Sequence[str], responses: Sequence[str]) -> list[np.ndarray]:
        """Token ids per exchange, rendered with the chat template where there is one, truncated."""
        tok = self.tokenizer
        if self.uses_chat_template:
            out = []
            for p, r in zip(prompts, responses):
                ids = tok.apply_chat_template([{"role": "user", "content": user_message(p)},
                                               {"role": "assistant", "content": r}], tokenize=True,
                                              return_dict=False)
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                out.append(np.asarray(ids[: self.max_length], dtype=np.int64))
            return out
        texts = [f"{p}{RESPONSE_MARK}{r}" for p, r in zip(prompts, responses)]
        enc = tok(texts, padding=False, truncation=True, max_length=self.max_length,
                  return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return [np.asarray(x, dtype=np.int64) for x in enc]

    def _pad_id(self, ids: Sequence[np.ndarray]) -> int:
        """The tokenizer's pad (else eos) id, unless some text ends with it: then an id none ends with."""
        tok = self.tokenizer
        first = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        candidates = [first] if first is not None else []
        last = {int(x[-1]) for x in ids if len(x)}
        if candidates and candidates[0] not in last:
            return int(candidates[0])
        return next(i for i in range(len(last) + 1) if i not in last)

    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor):
        return (self.model(input_ids=input_ids, attention_mask=mask).logits[:, 0],)

    def score_pairs(self, prompts: Sequence[str], responses: Sequence[str], batch_tokens: int = 16384,
                    progress=None) -> np.ndarray:
        """The reward of every (prompt, response) exchange, in input order."""
        ids = self.token_ids(prompts, responses)
        scores = np.zeros(len(ids), dtype=np.float32)
        if not ids:
            return scores
        pad_id = self._pad_id(ids)
        self.model.config.pad_token_id = pad_id  # where decoder models read the score: the last real token
        for idx, (s,) in run_batches(self._forward, ids, pad_id=pad_id, batch_tokens=batch_tokens,
                                     device=self.device, dtype=self.dtype, progress=progress):
            scores[idx] = s
        return scores

    def score_texts(self, texts: Sequence[str], batch_tokens: int = 16384) -> np.ndarray:
        halves = [t.split(RESPONSE_MARK, 1) if RESPONSE_MARK in t else [t, ""] for t in texts]
        return self.score_pairs([h[0] for h in halves], [h[1] for h in halves], batch_tokens)
