"""Batching for the encoder pass: texts grouped by exact token count, each batch holding texts of
one length only (so nothing is padded) under a token budget, run in the run's precision, and returned
per batch with their indices.

Batch invariance: a text's features are the same bits whatever it is batched with. Padding changes
them (a padded text takes the masked attention path and its sums see a wider row), so a batch never
mixes lengths; on CPU the bf16 oneDNN kernels and the fp32 head then give every row the same bits
whatever the number of rows (benchmarks/batch_invariance.py checks it and measures what it costs).
On other devices, where kernels may be chosen by shape, a batch's rows are filled up to a count
that depends on its length alone, so every text of one length runs in one shape; the scoring head
runs in chunks of HEAD_ROWS rows (`in_fixed_rows`) everywhere. A token budget per batch (rather than
a fixed batch size) keeps memory flat whatever the text lengths are. On CPU, independent
single-threaded batches run on a thread pool (`encode_workers`).
"""

from __future__ import annotations

import contextvars
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .device import autocast
from .settings import current_settings


# The scoring head (fp32, a few small matrix products) runs in chunks of exactly this many rows: fp32
# GEMM kernels pick their blocking by the number of rows, so a text's score would otherwise depend on
# how many texts share its batch (in_fixed_rows).
HEAD_ROWS = 64


def batch_rows(length: int, batch_tokens: int, max_batch: int = 512) -> int:
    """How many texts of `length` tokens one batch holds: as many as batch_tokens allows (at least 1)."""
    return max(1, min(max_batch, batch_tokens // max(1, length)))


def length_batches(lengths: Sequence[int], batch_tokens: int, max_batch: int = 512,
                   one_length: bool = True) -> list[np.ndarray]:
    """Indices grouped into batches of texts of exactly one token count, batch_rows(length) at most
    each, longest first (so the largest allocation happens at once and memory does not creep upward).
    One length per batch means no padding: what makes a text's features independent of its batch.

    one_length=False: consecutive lengths share a batch while its padded size stays under
    batch_tokens, for a `fn` that computes each length's rows apart (ragged batches, run_batches)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    if not one_length:
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
    runs = np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1) if len(order) else []
    batches = []
    for run in runs:
        rows = batch_rows(int(lengths[run[0]]), batch_tokens, max_batch)
        batches.extend(run[start:start + rows] for start in range(0, len(run), rows))
    return batches


def length_groups(mask: torch.Tensor) -> tuple[torch.Tensor | None, list[tuple[int, int, int]]]:
    """A right-padded batch's rows by token count: (the row order that puts rows of one length
    together, longest first, or None where they already are; [(first row, end row, length)] in
    that order)."""
    lengths = mask.sum(1)
    order = torch.argsort(-lengths, stable=True)
    if bool((order == torch.arange(len(order), device=order.device)).all()):
        order = None
    ordered = (lengths if order is None else lengths[order]).tolist()
    groups, start = [], 0
    for row in range(1, len(ordered) + 1):
        if row == len(ordered) or ordered[row] != ordered[start]:
            groups.append((start, row, int(ordered[start])))
            start = row
    return order, groups


def in_fixed_rows(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor | None,
                  rows: int = HEAD_ROWS) -> torch.Tensor:
    """fn(*tensors) computed in chunks of exactly `rows` rows (the last one filled with zero rows, cut
    off again) and concatenated: for a row-wise `fn` each row's result is then the same bits whatever
    the number of rows it came with. None arguments pass through as None."""
    n = next(t.shape[0] for t in tensors if t is not None)
    parts = []
    for start in range(0, max(n, 1), rows):
        chunk = []
        for t in tensors:
            if t is not None:
                t = t[start:start + rows]
                if t.shape[0] < rows:
                    t = torch.cat([t, t.new_zeros((rows - t.shape[0], *t.shape[1:]))])
            chunk.append(t)
        parts.append(fn(*chunk)[: min(rows, n - start)])
    return torch.cat(parts)


def pad_batch(ids: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = x
        mask[row, : len(x)] = 1
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


def encode_workers(device: torch.device) -> int:
    """How many batches run at once on CPU: EncoderSettings.encode_workers, else one per intra-op
    thread torch would use (its default is the number of physical cores), each batch single-threaded.

    Independent single-threaded batches need no synchronisation between cores, so a core that the OS
    lends to another process for a while delays only its own batch; one batch split across cores by
    OpenMP waits at every operation for its slowest thread. In benchmarks/bench_pipeline.py's A/B on
    2 cores: 1.7x faster on a busy machine, 1.06x on a quiet one."""
    if device.type != "cpu":
        return 1
    return max(1, current_settings().encode_workers or torch.get_num_threads())


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
    ragged: bool = False,
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yields (indices, outputs as float32 numpy arrays) batch by batch, longest texts first.

    On CPU a batch holds at most EncoderSettings.cpu_batch_tokens tokens (memory stays flat all the
    same), and with workers > 1 (default: encode_workers()), that many batches run at once, each on one
    thread (torch's intra-op threads are set to 1 meanwhile and restored after); results still come
    in batch order. `fn` must then be safe to call from several threads (inference only).

    A batch holds texts of one token count only (length_batches), so a text's outputs do not depend
    on which other texts are in the run. On other devices than the CPU a short batch is filled up to
    batch_rows(length) rows (copies of its last text, cut off again), so every text of one length
    runs in one shape whatever kernel choices the device makes by shape.

    fixed_layout=True ignores both throughput settings (the CPU cap, the workers): batches of exactly
    batch_tokens, one at a time on torch's threads: a scorer's training features in one layout, for
    kernels whose results would depend on the shape or the threads.

    ragged=True (CPU only): a batch may hold several lengths, padded, for an `fn` that computes each
    length's rows apart (QualityEstimator.score_and_embed: its matrix products run on every real
    token of the batch at once, its attention and pooling length by length), which keeps the
    matrix products as large as padded batches made them and the bits of one-length batches.

    extras: per-text arrays (first axis = text); each batch's rows are passed to `fn` after the mask."""
    lengths = [len(x) for x in token_ids]
    cap = current_settings().cpu_batch_tokens
    if device.type == "cpu" and cap and not fixed_layout:
        batch_tokens = min(batch_tokens, cap)
    fill_rows = device.type != "cpu"
    batches = length_batches(lengths, batch_tokens, one_length=not ragged or fill_rows)
    if fixed_layout:
        workers = 1
    elif workers is None:
        workers = encode_workers(device)
    workers = min(max(1, workers), len(batches))

    def work(batch: np.ndarray):
        n = len(batch)
        shaped = batch
        if fill_rows:  # one shape per length: copies of the last text fill the batch
            shaped = np.concatenate([batch, np.repeat(batch[-1:], batch_rows(lengths[batch[0]], batch_tokens) - n)])
        input_ids, mask = pad_batch([token_ids[i] for i in shaped], pad_id)
        rows = [torch.as_tensor(e[shaped]).to(device) for e in extras]
        with torch.inference_mode(), autocast(device, dtype):  # both thread-local: set in the worker
            outputs = fn(input_ids.to(device), mask.to(device), *rows)
        return [o[:n].float().cpu().numpy() for o in outputs], int(mask[:n].sum())

    if workers <= 1:
        for batch in batches:
            outputs, n_tokens = work(batch)
            yield batch, outputs
            if progress is not None:
                progress(len(batch), n_tokens)
        return

    def submit(pool: ThreadPoolExecutor, batch: np.ndarray):
        # each task runs in a copy of this context: the encoder settings in effect here apply there
        return batch, pool.submit(contextvars.copy_context().run, work, batch)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="car-encode") as pool:
            todo = iter(batches)
            pending = deque(submit(pool, b) for b in itertools.islice(todo, 2 * workers))
            try:
                while pending:
                    batch, future = pending.popleft()
                    outputs, n_tokens = future.result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.append(submit(pool, nxt))
                    yield batch, outputs
                    if progress is not None:
                        progress(len(batch), n_tokens)
            finally:
                for _, future in pending:
                    future.cancel()
    finally:
        torch.set_num_threads(threads)
