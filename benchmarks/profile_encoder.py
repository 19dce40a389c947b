"""Where the score+embed pass spends its time, against the bf16 matrix-product ceiling measured in the
same run (issue 30).

  python benchmarks/profile_encoder.py                  # 3,000 seeded Alpaca texts, the levers' A/B
  python benchmarks/profile_encoder.py --texts 1000 --skip levers

What it measures, on the shipped path (the default scorer, `precision="auto"` = bf16 on a CPU with
AVX512-BF16/AMX, FastEncoder, batches of at most 4,096 tokens, two single-threaded workers):

1. wall clock of each stage of `FeatureExtractor.compute` (the path `car-select run` takes) taken
   apart: tokenising the whole text (head + tail), tokenising the prompts, the text statistics,
   the encoder pass (run_batches over score_and_embed_views), and the whole compute() for reference;
2. torch.profiler over the encoder pass: self CPU time of every op, grouped into linear products
   (oneDNN, GELU and residual additions fused in), attention (SDPA, softmax inside), layer norm,
   embeddings and casts, pooling, the scoring head, batching (padding, copies out) and other; the CPU
   time outside any torch op (Python, the thread pool, a worker waiting at the end of a chunk) is the
   wall time x workers less the ops' total;
3. padding: padded tokens / real tokens for the shipped batching;
4. the ceiling: torch's bf16 products on MiniLM-shaped operands (4,096 tokens x 384 -> 1,152 / 384 /
   1,536 and 1,536 -> 384), as the shipped path runs them (pre-packed oneDNN weights, two
   single-threaded workers) and as a plain 2-thread F.linear, measured before and after the pass,
   as tokens/s of the encoder's 21.2 MFLOP of linear work per token; the pass's tokens/s as a
   fraction of it;
5. levers (`--skip levers` leaves them out), each against the shipped path on the same texts,
   interleaved unit by unit with the order rotated: see run_levers().

Output: benchmarks/results/encoder_profile.json (`--out`), and a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
# (in, out) of the encoder's four products per layer: fused QKV, attention output, up, down
SHAPES = ((384, 1152), (384, 384), (384, 1536), (1536, 384))
LAYERS = 6


# ---- the ceiling -----------------------------------------------------------------------------------

def _rate(call, flops_per_call: float, seconds: float, workers: int) -> float:
    """GFLOP/s of `call` run in a loop by `workers` threads at once (torch releases the GIL)."""
    stop = time.perf_counter() + seconds
    counts = [0] * workers

    def loop(w):
        call()
        t0 = time.perf_counter()
        while time.perf_counter() < stop:
            call()
            counts[w] += 1
        return time.perf_counter() - t0

    if workers == 1:
        elapsed = loop(0)
        return flops_per_call * counts[0] / elapsed / 1e9
    with ThreadPoolExecutor(workers) as pool:
        elapsed = list(pool.map(loop, range(workers)))
    return sum(flops_per_call * c / e for c, e in zip(counts, elapsed)) / 1e9


def ceiling(seconds: float = 0.6, tokens: int = 4096) -> dict:
    """bf16 product rates on the encoder's shapes, two ways, and the tokens/s each implies."""
    import torch

    from car_select.encoding.fast_bert import _Linear, _packed_linear_available

    out = {}
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    for how in ("packed-2workers", "F.linear-2threads"):
        rates, sec_per_token = {}, 0.0
        for k, n in SHAPES:
            x = torch.randn(tokens, k).to(torch.bfloat16)
            layer = (torch.randn(n, k) / k ** 0.5, torch.zeros(n))
            flops = 2.0 * tokens * k * n
            if how == "packed-2workers":
                lin = _Linear(layer, torch.bfloat16, torch.device("cpu"), _packed_linear_available(torch.device("cpu")))
                torch.set_num_threads(1)
                try:
                    with torch.inference_mode():
                        r = _rate(lambda: lin(x), flops, seconds, 2)
                finally:
                    torch.set_num_threads(threads)
            else:
                w, b = layer[0].to(torch.bfloat16), layer[1].to(torch.bfloat16)
                with torch.inference_mode():
                    r = _rate(lambda: torch.nn.functional.linear(x, w, b), flops, seconds, 1)
            rates[f"{k}->{n}"] = round(r, 1)
            sec_per_token += 2.0 * k * n / (r * 1e9)
        flop_per_token = 2.0 * LAYERS * sum(k * n for k, n in SHAPES)
        tps = 1.0 / (LAYERS * sec_per_token)
        out[how] = {"gflops": rates, "mix_gflops": round(flop_per_token * tps / 1e9, 1), "tokens_per_s": round(tps)}
    out["best_tokens_per_s"] = max(out[h]["tokens_per_s"] for h in ("packed-2workers", "F.linear-2threads"))
    return out


# ---- the pass, profiled ----------------------------------------------------------------------------

CATEGORIES = ("linear", "attention", "layer_norm", "embeddings_casts", "pooling", "head", "batching", "other")


def op_category(scope: str | None, name: str) -> str:
    """A profiler op (its enclosing car:: scope, its name) -> one of CATEGORIES."""
    if scope == "car::pool":
        return "pooling"
    if scope == "car::head":
        return "head"
    if scope == "car::encoder":
        if "linear_pointwise" in name or name in ("aten::addmm", "aten::mm", "aten::linear", "aten::matmul"):
            return "linear"
        if "scaled_dot_product" in name or "softmax" in name or name in ("aten::bmm", "aten::baddbmm"):
            return "attention"
        if "layer_norm" in name:
            return "layer_norm"
        return "embeddings_casts"
    return "batching"


def profiled_fn(model):
    """score_and_embed_views with its parts in named scopes (the same computation)."""
    import torch
    from torch import nn
    from torch.profiler import record_function

    from car_select.scoring.model import masked_mean_views

    def fn(input_ids, attention_mask, response_start, stats):
        with record_function("car::encoder"):
            hidden = model.hidden_states(input_ids, attention_mask)
        with record_function("car::pool"):
            views = masked_mean_views(hidden, attention_mask, response_start)
        with record_function("car::head"):
            embedding = nn.functional.normalize(views[:, 0, -1], dim=-1)
            with torch.autocast(input_ids.device.type, enabled=False):
                scores = model.head(views, stats)
        return scores, embedding, attention_mask.sum(1)

    return fn


def profile_pass(scorer, inputs, batch_tokens: int) -> dict:
    """Self CPU time per category under torch.profiler, on the shipped batching and workers."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from car_select.encoding.batching import run_batches

    ids, starts, stats = inputs
    fn = profiled_fn(scorer.model)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one worker's view: the profiler does not follow the pool's threads
    try:
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in run_batches(fn, ids, pad_id=scorer.pad_id, batch_tokens=batch_tokens, device=scorer.device,
                                 dtype=scorer.dtype, extras=(starts, stats), workers=1):
                pass
        wall = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    events = prof.events()
    by_cat, by_op = defaultdict(float), defaultdict(float)
    for ev in events:
        if ev.name.startswith("car::"):
            continue
        scope, p = None, ev.cpu_parent
        while p is not None:
            if p.name.startswith("car::"):
                scope = p.name
            p = p.cpu_parent
        cat = op_category(scope, ev.name)
        self_s = ev.self_cpu_time_total / 1e6
        by_cat[cat] += self_s
        by_op[(cat, ev.name)] += self_s
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:25]
    return {"wall_s_profiled": wall, "self_cpu_s": dict(by_cat),
            "top_ops": [{"category": c, "op": n, "self_cpu_s": round(s, 3)} for (c, n), s in top]}


def padding(ids, batch_tokens: int) -> dict:
    from car_select.encoding.batching import length_batches
    from car_select.encoding.settings import current_settings

    lengths = np.array([len(x) for x in ids])
    cap = current_settings().cpu_batch_tokens
    batches = length_batches(lengths, min(batch_tokens, cap) if cap else batch_tokens)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    real = int(lengths.sum())
    # attention's work grows with the square of the width: its share of the padding waste
    att_padded = sum(len(b) * int(lengths[b].max()) ** 2 for b in batches)
    att_real = int((lengths.astype(np.int64) ** 2).sum())
    return {"batches": len(batches), "real_tokens": real, "padded_tokens": padded,
            "padding_share": round(padded / real - 1, 4), "attention_padding_share": round(att_padded / att_real - 1, 4),
            "mean_tokens": round(float(lengths.mean()), 1)}


def shipped_pass(scorer, inputs, batch_tokens: int):
    """The encoder pass exactly as Scorer.score_and_embed_pairs runs it: (scores, embeddings)."""
    from car_select.encoding.batching import run_batches

    ids, starts, stats = inputs
    n = len(ids)
    scores = np.zeros(n, np.float32)
    emb = np.zeros((n, scorer.head_config.hidden_size), np.float32)
    for idx, (s, e, _) in run_batches(scorer.model.score_and_embed_views, ids, pad_id=scorer.pad_id,
                                      batch_tokens=batch_tokens, device=scorer.device, dtype=scorer.dtype,
                                      extras=(starts, stats)):
        scores[idx], emb[idx] = s, e
    return scores, emb


def one_worker_pass(scorer, inputs, batch_tokens: int):
    """The same pass on one thread, one batch at a time: what one of the two workers does."""
    import torch

    from car_select.encoding.batching import run_batches

    ids, starts, stats = inputs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in run_batches(scorer.model.score_and_embed_views, ids, pad_id=scorer.pad_id, batch_tokens=batch_tokens,
                             device=scorer.device, dtype=scorer.dtype, extras=(starts, stats), workers=1):
            pass
    finally:
        torch.set_num_threads(threads)


def stage_times(scorer, segments, batch_tokens: int, rounds: int = 1) -> tuple[dict, tuple]:
    """Wall seconds of each stage of compute() taken apart, then compute() itself; each the least of
    `rounds` rounds (the rounds interleave the stages, so a burst of load falls on one round)."""
    from car_select.config import Config
    from car_select.encoding.tokenize import tokenize_head_tail
    from car_select.features import FeatureExtractor
    from car_select.render import RESPONSE_MARK
    from car_select.scoring.textstats import text_stats_batch

    prompts, responses = segments.prompts, segments.responses
    hc = scorer.head_config
    runs = defaultdict(list)
    for _ in range(rounds):
        t0 = time.perf_counter()
        texts = [f"{p}{RESPONSE_MARK}{r}" for p, r in zip(prompts, responses)]
        ids, heads = tokenize_head_tail(scorer.tokenizer, texts, scorer.max_length, hc.tail_tokens)
        runs["tokenize_text"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        prompt_ids = scorer.tokenizer(list(prompts), add_special_tokens=False, truncation=True,
                                      max_length=scorer.max_length, return_attention_mask=False,
                                      return_token_type_ids=False)["input_ids"]
        starts = np.array([min(1 + len(p), h) for p, h in zip(prompt_ids, heads)], dtype=np.int64)
        runs["tokenize_prompts"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stats = text_stats_batch(prompts, responses, hc.text_stats)
        runs["text_stats"].append(time.perf_counter() - t0)
        inputs = (ids, starts, stats)
        t0 = time.perf_counter()
        shipped_pass(scorer, inputs, batch_tokens)
        runs["encoder_pass"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        FeatureExtractor(scorer, Config()).compute(segments)
        runs["compute_whole"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        one_worker_pass(scorer, inputs, batch_tokens)
        runs["encoder_pass_one_worker"].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in runs.items()}, inputs


# ---- levers ----------------------------------------------------------------------------------------

def interleaved(variants: dict, units: list[np.ndarray]) -> dict:
    """Each variant(rows) on the same units of texts, the order rotated unit by unit: wall per variant."""
    names = list(variants)
    wall = dict.fromkeys(names, 0.0)
    outs = {k: [] for k in names}
    for c, rows in enumerate(units):
        order = names[c % len(names):] + names[:c % len(names)]
        for k in order:
            t0 = time.perf_counter()
            out = variants[k](rows)
            wall[k] += time.perf_counter() - t0
            outs[k].append((rows, out))
        print(f"  lever A/B unit {c + 1}/{len(units)}", file=sys.stderr, flush=True)
    return {"wall": wall, "outputs": outs}


def gather(parts, n):
    scores, emb = np.zeros(n, np.float32), None
    for rows, (s, e) in parts:
        if emb is None:
            emb = np.zeros((n, e.shape[1]), np.float32)
        scores[rows], emb[rows] = s, e
    return scores, emb


def pooled_no_roundtrip(hidden_states, attention_mask, response_start):
    """masked_mean_views without the fp32 copy of every layer: under bf16 autocast the prompt and response
    products run in bf16 whatever their inputs (torch.bmm is on autocast's lower-precision list), so
    the shipped `h.float()` is cast straight back to bf16 (a lossless round trip of two copies). Here
    the bf16 layers go in as they are: the same products on the same values."""
    import torch

    from car_select.scoring.model import masked_mean_layers

    full = masked_mean_layers(hidden_states, attention_mask)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)[None, :]
    real = attention_mask.bool()
    in_response = (positions >= response_start[:, None]) & real
    parts = torch.stack([real & ~in_response, in_response], 1).to(torch.float32)
    denom = parts.sum(-1).clamp(min=1)[:, :, None, None]
    device = attention_mask.device.type
    low = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
    sums = torch.stack([torch.bmm(parts, h if h.dtype == low else h.float()) for h in hidden_states], 2)
    return torch.cat([full[:, None], sums / denom], 1)


def views_fn(model, pool):
    import torch
    from torch import nn

    def fn(input_ids, attention_mask, response_start, stats):
        views = pool(model.hidden_states(input_ids, attention_mask), attention_mask, response_start)
        embedding = nn.functional.normalize(views[:, 0, -1], dim=-1)
        with torch.autocast(input_ids.device.type, enabled=False):
            scores = model.head(views, stats)
        return scores, embedding

    return fn


def run_levers(scorer, segs, seed: int, n_texts: int, unit: int, sub: int) -> dict:
    """Levers 1 (overlap) and 2 (pooling) against the shipped compute(), interleaved; lever 3 (int8) at
    the kernel level: per-channel dynamic int8 products against the shipped packed bf16 ones."""
    import torch

    from car_select.config import Config
    from car_select.encoding.batching import run_batches
    from car_select.features import FeatureExtractor, Segments

    pick = random.Random(seed + 1).sample(range(len(segs.prompts)), min(n_texts, len(segs.prompts)))
    prompts = [segs.prompts[i] for i in pick]
    responses = [segs.responses[i] for i in pick]
    n = len(pick)
    bt = Config().batch_tokens
    extractor = FeatureExtractor(scorer, Config())

    def seg(rows):
        return Segments([prompts[i] for i in rows], [responses[i] for i in rows], np.arange(len(rows)))

    def chunks(rows):  # compute() chunks, as FeatureExtractor.extract makes them (ENCODE_CHUNK texts)
        return [rows[s:s + sub] for s in range(0, len(rows), sub)]

    def shipped(rows):
        out = [extractor.compute(seg(part)) for part in chunks(rows)]
        return np.concatenate([o["scores"] for o in out]), np.concatenate([o["embeddings"] for o in out])

    def encode(inputs, fn):
        ids, starts, stats = inputs
        scores = np.zeros(len(ids), np.float32)
        emb = np.zeros((len(ids), scorer.head_config.hidden_size), np.float32)
        for idx, (s, e, *_) in run_batches(fn, ids, pad_id=scorer.pad_id, batch_tokens=bt, device=scorer.device,
                                           dtype=scorer.dtype, extras=(starts, stats)):
            scores[idx], emb[idx] = s, e
        return scores, emb

    def overlapped(rows):
        """The next chunk's tokens and statistics prepared on a thread while this chunk encodes."""
        parts = chunks(rows)
        out = []
        with ThreadPoolExecutor(1, thread_name_prefix="car-prepare") as prep:
            nxt = prep.submit(scorer.pair_inputs, seg(parts[0]).prompts, seg(parts[0]).responses)
            for j in range(len(parts)):
                inputs = nxt.result()
                if j + 1 < len(parts):
                    s = seg(parts[j + 1])
                    nxt = prep.submit(scorer.pair_inputs, s.prompts, s.responses)
                out.append(encode(inputs, scorer.model.score_and_embed_views))
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])

    no_roundtrip = views_fn(scorer.model, pooled_no_roundtrip)

    def pooling(rows):
        out = []
        for part in chunks(rows):
            s = seg(part)
            out.append(encode(scorer.pair_inputs(s.prompts, s.responses), no_roundtrip))
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])

    variants = {"shipped": shipped, "overlap_prepare": overlapped, "pooling_no_roundtrip": pooling}
    warm = np.arange(min(64, n))
    for v in variants.values():
        v(warm)
    units = [np.arange(s, min(s + unit, n)) for s in range(0, n, unit)]
    load0 = os.getloadavg()[0]
    ab = interleaved(variants, units)
    base_s, base_e = gather(ab["outputs"]["shipped"], n)
    res = {"texts": n, "unit_texts": unit, "chunk_texts": sub, "load_average": [load0, os.getloadavg()[0]]}
    for k in variants:
        s, e = gather(ab["outputs"][k], n)
        res[k] = {"wall_s": round(ab["wall"][k], 3), "speedup_vs_shipped": round(ab["wall"]["shipped"] / ab["wall"][k], 3),
                  "identical_outputs": bool(np.array_equal(s, base_s) and np.array_equal(e, base_e)),
                  "max_abs_score_diff": float(np.abs(s - base_s).max()), "max_abs_embedding_diff": float(np.abs(e - base_e).max())}
    res["int8_kernels"] = int8_kernels()
    return res


def int8_kernels(seconds: float = 0.5, tokens: int = 4096) -> dict:
    """GFLOP/s of torch.ao per-channel dynamic int8 linears (x86 backend) against the shipped packed
    bf16 linears, one thread each, on the encoder's shapes; and the pass's best case with them."""
    import warnings

    import torch

    from car_select.encoding.fast_bert import _Linear

    out = {"engine": torch.backends.quantized.engine}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    bf16_s = int8_s = 0.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, n in SHAPES:
                m = torch.nn.Sequential(torch.nn.Linear(k, n))
                q = torch.ao.quantization.quantize_dynamic(
                    m, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8)
                lin = _Linear(m[0], torch.bfloat16, torch.device("cpu"), True)
                x = torch.randn(tokens, k)
                xb = x.to(torch.bfloat16)
                flops = 2.0 * tokens * k * n
                with torch.inference_mode():
                    rb = _rate(lambda: lin(xb), flops, seconds, 1)
                    ri = _rate(lambda: q(x), flops, seconds, 1)
                out[f"{k}->{n}"] = {"bf16_packed_gflops": round(rb, 1), "int8_dynamic_per_channel_gflops": round(ri, 1)}
                bf16_s += 2.0 * k * n / rb
                int8_s += 2.0 * k * n / ri
    finally:
        torch.set_num_threads(threads)
    out["int8_over_bf16_linear_time"] = round(int8_s / bf16_s, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--texts", type=int, default=3000, help="seeded sample of Alpaca's unique texts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lever-texts", type=int, default=6144, help="texts in the levers' A/B (another seeded sample)")
    ap.add_argument("--lever-unit", type=int, default=1024, help="texts per interleaved unit of the levers' A/B")
    ap.add_argument("--lever-chunk", type=int, default=256, help="texts per compute() call in the A/B "
                    "(0: ENCODE_CHUNK); several per unit, so that overlap has a next chunk to prepare")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the stage timings (the least is kept)")
    ap.add_argument("--skip", default="", help="comma-separated: profile, levers")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "encoder_profile.json")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if not args.data.is_file():
        print(f"skipped: {args.data} not found")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from bench_pipeline import git_commit, load_texts, machine_info
    from car_select.config import Config
    from car_select.features import Segments
    from car_select.scoring.scorer import Scorer

    result = {"machine": machine_info(torch.device("cpu")), "git_commit": git_commit(),
              "command": "python benchmarks/profile_encoder.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    _, _, segs = load_texts(args.data, None)
    pick = sorted(random.Random(args.seed).sample(range(len(segs.prompts)), min(args.texts, len(segs.prompts))))
    segments = Segments([segs.prompts[i] for i in pick], [segs.responses[i] for i in pick], np.arange(len(pick)))
    config = Config()
    scorer = Scorer.load().to(config.device, config.precision)
    bt = config.batch_tokens
    result.update(texts=len(pick), seed=args.seed, precision=str(scorer.dtype), batch_tokens=bt)
    print(f"{len(pick)} texts, {scorer.dtype}, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)

    # warm up: the FastEncoder, packed weights, the thread pool, the tokenizer
    warm = Segments(segments.prompts[:64], segments.responses[:64], np.arange(64))
    stage_times(scorer, warm, bt)

    cal_before = ceiling()
    times, inputs = stage_times(scorer, segments, bt, args.rounds)
    cal_after = ceiling()
    ids = inputs[0]
    pad = padding(ids, bt)
    real = pad["real_tokens"]
    ceil_tps = (cal_before["best_tokens_per_s"] + cal_after["best_tokens_per_s"]) / 2
    enc_tps = real / times["encoder_pass"]
    whole_tps = real / times["compute_whole"]
    result["stages_s"] = {k: round(v, 3) for k, v in times.items()}
    result["padding"] = pad
    result["ceiling"] = {"before": cal_before, "after": cal_after, "tokens_per_s": round(ceil_tps),
                         "linear_mflop_per_token": round(2 * LAYERS * sum(k * n for k, n in SHAPES) / 1e6, 2)}
    result["pass"] = {"tokens_per_s_encoder": round(enc_tps), "tokens_per_s_compute": round(whole_tps),
                      "fraction_of_ceiling_encoder": round(enc_tps / ceil_tps, 3),
                      "fraction_of_ceiling_compute": round(whole_tps / ceil_tps, 3),
                      "tokens_per_s_one_worker": round(real / times["encoder_pass_one_worker"]),
                      # 1.0: two workers do twice what one does alone
                      "two_worker_scaling": round(times["encoder_pass_one_worker"] / times["encoder_pass"] / 2, 3)}

    if "profile" not in skip:
        prof = profile_pass(scorer, inputs, bt)
        ops = sum(prof["self_cpu_s"].values())
        prof["outside_ops_s"] = round(max(0.0, prof["wall_s_profiled"] - ops), 3)  # Python, profiler
        prof["self_cpu_s"] = {k: round(prof["self_cpu_s"].get(k, 0.0), 3) for k in CATEGORIES}
        prof["ops_total_s"] = round(ops, 3)
        prof["wall_s_profiled"] = round(prof["wall_s_profiled"], 3)
        # compute()'s wall time apportioned: the host stages as timed; the encoder pass split by the
        # one-worker profile's shares (its ops and the time outside them)
        shares = dict(prof["self_cpu_s"], outside_torch_ops=prof["outside_ops_s"])
        rows = {f"encoder: {k}": times["encoder_pass"] * v / prof["wall_s_profiled"] for k, v in shares.items()}
        for k in ("tokenize_text", "tokenize_prompts", "text_stats"):
            rows[k] = times[k]
        rows["rest of compute()"] = max(0.0, times["compute_whole"] - sum(rows.values()))
        total = sum(rows.values())
        prof["table"] = [{"part": k, "wall_s": round(v, 3), "share": round(v / total, 4)}
                         for k, v in sorted(rows.items(), key=lambda kv: -kv[1])]
        result["profile"] = prof

    if "levers" not in skip:
        from car_select.features import ENCODE_CHUNK

        result["levers"] = run_levers(scorer, segs, args.seed, args.lever_texts, args.lever_unit,
                                      args.lever_chunk or ENCODE_CHUNK)
        lin = result["profile"]["self_cpu_s"]["linear"] / result["profile"]["wall_s_profiled"] if "profile" in result else None
        if lin is not None:  # Amdahl: the encoder pass with its products int8 (kernel speed as measured)
            r = result["levers"]["int8_kernels"]["int8_over_bf16_linear_time"]
            result["levers"]["int8_kernels"]["linear_share_of_pass"] = round(lin, 3)
            result["levers"]["int8_kernels"]["pass_speedup_bound"] = round(1 / (1 - lin + lin * r), 3)
            result["levers"]["int8_kernels"]["pass_speedup_bound_free_linear"] = round(1 / (1 - lin), 3)

    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    summarize(result)
    print(f"wrote {args.out}")
    return 0


def summarize(r: dict) -> None:
    m = r["machine"]
    print(f"\n{m['cpu_model']} ({m['cpu_family_model']}), {m['cpu_cores']} cores, torch {m['torch']}; "
          f"load average {m['load_average_at_start'][0]:.2f} -> {m['load_average_at_end'][0]:.2f}")
    print(f"{r['texts']} texts, {r['padding']['real_tokens']:,} tokens ({r['padding']['mean_tokens']} a text), "
          f"{r['precision']}")
    print("\nstage                     wall s")
    for k, v in r["stages_s"].items():
        print(f"  {k:22s} {v:8.2f}")
    c = r["ceiling"]
    print(f"\nceiling (bf16 products, {c['linear_mflop_per_token']} MFLOP/token): {c['tokens_per_s']:,} tokens/s "
          f"(packed 2 workers {c['before']['packed-2workers']['tokens_per_s']:,}/{c['after']['packed-2workers']['tokens_per_s']:,}, "
          f"F.linear 2 threads {c['before']['F.linear-2threads']['tokens_per_s']:,}/{c['after']['F.linear-2threads']['tokens_per_s']:,}; "
          f"before/after)")
    p = r["pass"]
    print(f"pass: encoder {p['tokens_per_s_encoder']:,} tokens/s = {p['fraction_of_ceiling_encoder']:.2f} of the ceiling; "
          f"compute() {p['tokens_per_s_compute']:,} tokens/s = {p['fraction_of_ceiling_compute']:.2f}")
    print(f"padding: {r['padding']['padding_share']:.1%} of real tokens "
          f"({r['padding']['attention_padding_share']:.1%} of attention's work)")
    if "profile" in r:
        print("\npart of compute()                          wall s   share")
        for row in r["profile"]["table"]:
            print(f"  {row['part']:40s} {row['wall_s']:7.2f} {row['share']:7.1%}")
        print("\ntop ops (self CPU s):")
        for row in r["profile"]["top_ops"][:12]:
            print(f"  {row['category']:16s} {row['op']:50s} {row['self_cpu_s']:7.3f}")
    lv = r.get("levers")
    if lv:
        print(f"\nlevers, interleaved on {lv['texts']} texts (load average {lv['load_average'][0]:.2f} -> "
              f"{lv['load_average'][1]:.2f}):")
        for k in ("shipped", "overlap_prepare", "pooling_no_roundtrip"):
            v = lv[k]
            print(f"  {k:18s} {v['wall_s']:7.2f} s  {v['speedup_vs_shipped']:.3f}x  identical={v['identical_outputs']} "
                  f"(max score diff {v['max_abs_score_diff']:.2g}, embedding {v['max_abs_embedding_diff']:.2g})")
        q = lv["int8_kernels"]
        print(f"  int8 dynamic per-channel linears: {q['int8_over_bf16_linear_time']:.2f}x the packed bf16 time; "
              f"pass bound {q.get('pass_speedup_bound')}x (free linears: {q.get('pass_speedup_bound_free_linear')}x)")
        for k, n in SHAPES:
            print(f"    {k}->{n}: {q[f'{k}->{n}']}")


if __name__ == "__main__":
    sys.exit(main())
