"""The quality estimator: the paper's IQS shape, generic over any Hugging Face encoder.

encoder -> every hidden layer (embeddings included) -> masked mean pooling per layer ->
learned sparsemax mix of the layers (COMET's layer-wise attention) -> feed-forward head -> one scalar.
Mixing then pooling equals pooling then mixing (both are linear), so we pool each layer first:
that lets training on a frozen encoder cache one small (layers x hidden) matrix per text, and lets
the same forward pass also return the clustering embedding (the mean-pooled last layer, L2-normalised,
which is exactly what sentence-transformers' all-MiniLM-L6-v2 produces).

The triplet variant ("Comet" in the paper) uses the same trunk but a head with a vector output; a
response's score is 1 / (1 + L2 distance between the instruction's and the response's vectors).

A multi-view head (the shipped default scorer) looks at more of the same pass: besides every layer
pooled over the whole text, every layer pooled over the prompt's tokens and over the response's
tokens, their per-layer cosine similarity, and cheap statistics of the whole response (textstats.py:
length, repetition, echo of the prompt), so it can tell an answer from padding, loops and
off-topic text that a pooled whole-text view cannot. Still one encoder pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from ..encoding.batching import in_fixed_rows

OBJECTIVES = ("pairwise", "regression", "triplet")
VIEWS = ("full", "prompt", "response")
VIEW_SETS = (["full"], list(VIEWS))


@dataclass
class HeadConfig:
    hidden_size: int  # the encoder's hidden size
    num_layers: int  # hidden states the encoder returns (transformer layers + embeddings)
    hidden_sizes: list[int] = field(default_factory=lambda: [2048, 1024])  # paper: 2048-1024
    activation: str = "Tanh"
    dropout: float = 0.1
    objective: str = "pairwise"
    output_size: int = 1  # 1 for a quality score; the vector size for the triplet objective
    # Independently trained heads whose outputs are averaged (1 = the paper's single head). Averaging
    # seeds removes most of the run-to-run variance of a head trained on 2,032 pairs.
    members: int = 1
    # What the head looks at, one of VIEW_SETS: ["full"] (the paper's: every layer pooled over the whole
    # text) or ["full", "prompt", "response"] (also pooled over the prompt's and the response's tokens).
    views: list[str] = field(default_factory=lambda: ["full"])
    text_stats: int = 0  # how many textstats.STAT_NAMES it takes as inputs (0: none)
    # Of a (prompt, response) text longer than the window, how many of its last tokens the window
    # keeps in place of the tokens before them (encode.tokenize_head_tail; 0: the first max_length).
    tail_tokens: int = 0

    @property
    def multi_view(self) -> bool:
        return list(self.views) != ["full"] or self.text_stats > 0

    def to_dict(self) -> dict:
        return asdict(self)


def sparsemax(logits: torch.Tensor) -> torch.Tensor:
    """Sparsemax over the last dimension (Martins & Astudillo, 2016), as COMET's layer mix uses."""
    z_sorted, _ = torch.sort(logits, dim=-1, descending=True)
    k = torch.arange(1, logits.shape[-1] + 1, device=logits.device, dtype=logits.dtype)
    cumsum = z_sorted.cumsum(-1)
    support = (1 + k * z_sorted) > cumsum
    k_max = support.sum(-1, keepdim=True)
    tau = (cumsum.gather(-1, k_max - 1) - 1) / k_max.to(logits.dtype)
    return torch.clamp(logits - tau, min=0.0)


class LayerMix(nn.Module):
    """gamma * sum_i sparsemax(w)_i * layer_i over pooled layers shaped (batch, layers, hidden)."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.scalar_parameters = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(1))

    def weights(self) -> torch.Tensor:
        return sparsemax(self.scalar_parameters)

    def forward(self, pooled_layers: torch.Tensor) -> torch.Tensor:
        w = self.weights().to(pooled_layers.dtype)
        return self.gamma.to(pooled_layers.dtype) * torch.einsum("l,blh->bh", w, pooled_layers)


class FeedForward(nn.Module):
    def __init__(self, in_dim: int, hidden_sizes: list[int], out_dim: int, activation: str, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers += [nn.Linear(in_dim, size), getattr(nn, activation)(), nn.Dropout(dropout)]
            in_dim = size
        layers.append(nn.Linear(in_dim, out_dim))
        self.ff = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class ScoringHead(nn.Module):
    """Everything after the encoder: layer mix + feed-forward. Works on pooled layer features.
    With config.members > 1 it is the mean of that many such heads (`members[i]`)."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        self.config = config
        if config.members > 1:
            single = replace(config, members=1)
            self.members = nn.ModuleList(ScoringHead(single) for _ in range(config.members))
            return
        self.layerwise_attention = LayerMix(config.num_layers)
        in_dim = config.hidden_size
        if config.multi_view:
            if list(config.views) != VIEW_SETS[1]:
                raise ValueError(f"views must be one of {VIEW_SETS}, got {config.views}")
            self.prompt_attention = LayerMix(config.num_layers)
            self.response_attention = LayerMix(config.num_layers)
            # whole text, response, prompt x response, per-layer prompt/response cosine, statistics
            in_dim = 3 * config.hidden_size + config.num_layers + config.text_stats
        self.estimator = FeedForward(in_dim, config.hidden_sizes, config.output_size, config.activation,
                                     config.dropout)

    def forward(self, pooled: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        """pooled: (batch, layers, hidden) for a ["full"] head, else (batch, views, layers, hidden) in
        the order of config.views; stats: (batch, text_stats) when the head takes them."""
        if self.config.members > 1:
            return torch.stack([m(pooled, stats) for m in self.members]).mean(0)
        out = self.estimator(self.inputs(pooled, stats))
        return out.squeeze(-1) if self.config.output_size == 1 else out

    def inputs(self, pooled: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        """What the feed-forward estimator of a single head takes: (batch, its input size)."""
        if not self.config.multi_view:
            return self.layerwise_attention((pooled[:, 0] if pooled.dim() == 4 else pooled)).float()
        pooled = pooled.float()
        full, prompt, response = pooled[:, 0], pooled[:, 1], pooled[:, 2]
        r = self.response_attention(response)
        cosine = nn.functional.cosine_similarity(prompt, response, dim=-1, eps=1e-6)  # (batch, layers)
        parts = [self.layerwise_attention(full), r, self.prompt_attention(prompt) * r, cosine]
        if self.config.text_stats:
            parts.append(stats.float())
        return torch.cat(parts, dim=-1)


def masked_mean_layers(hidden_states: tuple[torch.Tensor, ...] | list[torch.Tensor],
                       attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, layers, hidden): the mean over real (unpadded) tokens of every hidden layer, in fp32.
    Sums are accumulated in fp32 whatever the layers' dtype (without an fp32 copy of each layer)."""
    denom = attention_mask.sum(1, keepdim=True).clamp(min=1).to(torch.float32)  # (batch, 1)
    padded = not bool(attention_mask.all())
    masks: dict[torch.dtype, torch.Tensor] = {}
    sums = []
    for h in hidden_states:
        if padded:
            if h.dtype not in masks:
                masks[h.dtype] = attention_mask.unsqueeze(-1).to(h.dtype)
            h = h * masks[h.dtype]
        sums.append(h.sum(1, dtype=torch.float32))
    return torch.stack(sums, dim=1) / denom.unsqueeze(1)


def masked_mean_views(hidden_states, attention_mask: torch.Tensor, response_start: torch.Tensor) -> torch.Tensor:
    """(batch, 3, layers, hidden): every layer pooled over the whole text (exactly masked_mean_layers),
    over the prompt's tokens (before response_start) and over the response's (from it on). Padding is on
    the right. Under bf16 autocast the prompt and response sums run in bf16 (bmm is autocast to it), which
    the shipped heads were trained with; changing that changes their scores."""
    full = masked_mean_layers(hidden_states, attention_mask)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)[None, :]
    real = attention_mask.bool()
    in_response = (positions >= response_start[:, None]) & real
    masks = [real & ~in_response, in_response]
    parts = torch.stack(masks, 1).to(torch.float32)  # (b, 2, t)
    denom = parts.sum(-1).clamp(min=1)[:, :, None, None]  # an empty view pools to zeros
    sums = torch.stack([torch.bmm(parts, h.float()) for h in hidden_states], 2)  # (b, 2, layers, hidden)
    return torch.cat([full[:, None], sums / denom], 1)


class QualityEstimator(nn.Module):
    """Encoder + ScoringHead. `score_and_embed` is the one pass the pipeline runs."""

    def __init__(self, encoder: nn.Module, head: ScoringHead, train_encoder: bool = False):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.train_encoder = train_encoder

    def pooled_layers(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return masked_mean_layers(self.hidden_states(input_ids, attention_mask), attention_mask)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        from ..encoding.fast_bert import inference_encoder

        fast = inference_encoder(self.encoder, input_ids.device)  # None when training or unsupported
        if fast is not None:
            return fast.hidden_states(input_ids, attention_mask)
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states

    def pooled_by_length(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         response_start: torch.Tensor | None = None) -> torch.Tensor:
        """pooled_views (given response_start) or pooled_layers of a batch that may mix lengths,
        computed as if each length's rows were a batch alone: padding never enters a text's numbers
        (encoding/batching.py, ragged batches). Inference only."""
        from ..encoding.batching import length_groups
        from ..encoding.fast_bert import inference_encoder

        def pool(states, mask, starts):
            return masked_mean_layers(states, mask) if starts is None else masked_mean_views(states, mask, starts)

        if bool(attention_mask.all()):
            return pool(self.hidden_states(input_ids, attention_mask), attention_mask, response_start)
        order, groups = length_groups(attention_mask)
        if order is not None:
            input_ids, attention_mask = input_ids[order], attention_mask[order]
            response_start = None if response_start is None else response_start[order]
        fast = inference_encoder(self.encoder, input_ids.device)
        if fast is not None:
            states = fast.hidden_state_groups(input_ids, attention_mask, groups)
        else:
            states = [self.hidden_states(input_ids[a:b, :n], attention_mask[a:b, :n]) for a, b, n in groups]
        pooled = torch.cat([pool(s, attention_mask[a:b, :n], None if response_start is None else response_start[a:b])
                            for s, (a, b, n) in zip(states, groups)])
        return pooled if order is None else pooled[torch.argsort(order)]

    def pooled_views(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     response_start: torch.Tensor) -> torch.Tensor:
        return masked_mean_views(self.hidden_states(input_ids, attention_mask), attention_mask, response_start)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled_layers(input_ids, attention_mask))

    def score_and_embed_views(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                              response_start: torch.Tensor, stats: torch.Tensor):
        """score_and_embed for a multi-view head: the same embedding, the head sees every view."""
        views = self.pooled_by_length(input_ids, attention_mask, response_start)
        embedding = nn.functional.normalize(views[:, 0, -1], dim=-1)
        with torch.autocast(input_ids.device.type, enabled=False):  # fixed rows: a score is batch-invariant
            scores = in_fixed_rows(self.head, views, stats)
        return scores, embedding, attention_mask.sum(1)

    def score_and_embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(head output, L2-normalised mean-pooled last layer, token counts) for one batch."""
        pooled = self.pooled_by_length(input_ids, attention_mask)
        embedding = nn.functional.normalize(pooled[:, -1], dim=-1)
        with torch.autocast(input_ids.device.type, enabled=False):  # the small head in fp32, as in training
            scores = in_fixed_rows(self.head, pooled)  # fixed rows: a score is batch-invariant
        return scores, embedding, attention_mask.sum(1)
