"""The inference fast path for BERT-family encoders (all-MiniLM-L6-v2, XLM-R): the same layers as the
Hugging Face forward, with the weights cast once to the run's precision (instead of autocast casting
them on every call), query/key/value fused into one matrix product, and on CPU the weights pre-packed
for oneDNN with GELU and the residual additions fused into the matrix products.
benchmarks/bench_pipeline.py measures it against the plain forward (see benchmarks/README.md).
"""

from __future__ import annotations

import threading
import weakref

import torch

from .settings import current_settings

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

    def hidden_state_groups(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                            groups: list[tuple[int, int, int]]) -> list[list[torch.Tensor]]:
        """hidden_states of a right-padded batch whose rows come in groups of one length
        (encoding.batching.length_groups: [(first row, end row, length)]), without the padding: per
        group, every layer as (rows, length, hidden). The linear layers and layer norms run on every
        real token of the batch at once; attention runs group by group, unmasked. Each text's numbers
        are those of a batch of its length alone (the products give every row the same bits whatever
        the number of rows), at the speed of one big batch."""
        hidden, heads = self.hidden, self.heads
        layer_norm, sdpa = torch.nn.functional.layer_norm, torch.nn.functional.scaled_dot_product_attention
        spans, start = [], 0  # token ranges of the groups in the packed (tokens, hidden) layout
        for first, end, length in groups:
            spans.append((start, start + (end - first) * length, end - first, length))
            start = spans[-1][1]
        with torch.autocast(self.device.type, enabled=False):
            x = self.embeddings(input_ids=input_ids).to(self.dtype)[attention_mask.bool()]  # real tokens, row by row
            out = [x]
            for qkv, o, ln1, inter, down, ln2 in self.layers:
                both = qkv(x)
                ctx = []
                for t0, t1, rows, length in spans:
                    q, k, v = both[t0:t1].view(rows, length, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
                    ctx.append(sdpa(q, k, v).transpose(1, 2).reshape(rows * length, hidden))
                ctx = ctx[0] if len(ctx) == 1 else torch.cat(ctx)
                x = layer_norm(o.add(ctx, x), (hidden,), *ln1, self.eps)
                x = layer_norm(down.add(inter(x, "gelu"), x), (hidden,), *ln2, self.eps)
                out.append(x)
        return [[h[t0:t1].view(rows, length, hidden) for h in out] for t0, t1, rows, length in spans]


_FAST_LOCK = threading.Lock()
# encoder -> {(dtype, device): (weights version, FastEncoder)}; entries go with their encoder
_FAST: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def fast_encoder(encoder: torch.nn.Module, dtype: torch.dtype, device: torch.device | None = None) -> FastEncoder | None:
    """The FastEncoder for `encoder` in `dtype`, built once and rebuilt whenever the encoder's weights
    change (moved, replaced or updated in place); None where the architecture is not supported or the
    fast path is switched off (EncoderSettings.fast_encoder)."""
    if not current_settings().fast_encoder or not FastEncoder.supports(encoder):
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
    if not current_settings().fast_encoder or torch.is_grad_enabled() or encoder.training:
        return None
    if torch.is_autocast_enabled(device.type):
        dtype = torch.get_autocast_dtype(device.type)
    else:
        dtype = next(encoder.parameters()).dtype
    return fast_encoder(encoder, dtype, device)
