"""Batching for the encoder pass: texts sorted by length, grouped under a token budget, padded to each
batch's longest text, run in the run's precision, and returned per batch with their indices.

Sorting by length and padding per batch keeps padded tokens (wasted work) near zero; a token budget
per batch (rather than a fixed batch size) keeps memory flat whatever the text lengths are. On CPU,
independent single-threaded batches run on a thread pool (`encode_workers`).
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
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yields (indices, outputs as float32 numpy arrays) batch by batch, longest texts first.

    On CPU a batch holds at most EncoderSettings.cpu_batch_tokens tokens (memory stays flat all the
    same), and with workers > 1 (default: encode_workers()), that many batches run at once, each on one
    thread (torch's intra-op threads are set to 1 meanwhile and restored after); results still come
    in batch order. `fn` must then be safe to call from several threads (inference only).

    fixed_layout=True ignores both throughput settings (the CPU cap, the workers): batches of exactly
    batch_tokens, one at a time on torch's threads. Reduced-precision sums depend on the shapes they
    are computed in, so this is what makes a scorer's training features, and hence a retrained scorer,
    the same bytes whatever cpu_batch_tokens and encode_workers say.

    extras: per-text arrays (first axis = text); each batch's rows are passed to `fn` after the mask."""
    lengths = [len(x) for x in token_ids]
    cap = current_settings().cpu_batch_tokens
    if device.type == "cpu" and cap and not fixed_layout:
        batch_tokens = min(batch_tokens, cap)
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
