"""Rate records with an LLM judge: sample, ask (concurrently, retried, cached), parse, write.

`rate_dataset` is what `car-select rate` calls. Each distinct exchange text is asked once (the
ratings cache makes that true across runs too); a record's rating is the mean of its exchanges'.
A record whose reply could not be parsed after `parse_retries` more asks, or whose request kept
failing (429, 5xx, timeouts past the client's retries), is left out of the output and counted in the
result and a warning: it never becomes a 0. A rerun asks again only for those.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from ..errors import CarSelectError, CarSelectWarning, SettingError
from ..render import render_exchanges
from .cache import RatingsCache, rating_key
from .client import ChatClient, EndpointGaveUp
from .parse import parse_rating
from .prompts import Rubric


# ---- sampling -------------------------------------------------------------------------------------

def sample_indices(records: Sequence, n: int, seed: int = 42) -> np.ndarray:
    """`n` record indices (sorted), spread over the data's topics: the records' instructions (with
    their input) are clustered by TF-IDF k-means (k = sqrt(n/2), the paper's rule applied to the
    sample, at most 256), each cluster gets its share of `n` by size (largest remainders), and its
    records are drawn at random, all seeded. TF-IDF instead of the encoder keeps sampling 52k records
    a matter of seconds before any request is sent; the share per cluster keeps the sample's mix of
    topics that of the data, which the distilled scorer will score."""
    total = len(records)
    if n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    k = int(min(max(1, round(math.sqrt(n / 2))), 256, total))
    if k == 1:
        return np.sort(rng.choice(total, n, replace=False))
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    prompts = [f"{r.instruction} {r.input}" for r in records]
    try:
        x = TfidfVectorizer(max_features=50_000, sublinear_tf=True, dtype=np.float32).fit_transform(prompts)
    except ValueError:  # no words at all (every instruction empty): nothing to stratify by
        return np.sort(rng.choice(total, n, replace=False))
    labels = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit_predict(x)
    sizes = np.bincount(labels, minlength=k)
    share = n * sizes / total
    quota = np.floor(share).astype(int)
    for c in np.argsort(-(share - quota), kind="stable")[: n - quota.sum()]:
        quota[c] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), q, replace=False) for c, q in enumerate(quota) if q]
    return np.sort(np.concatenate(chosen))


# ---- rating ---------------------------------------------------------------------------------------

@dataclass
class RateResult:
    indices: np.ndarray  # records rated, in input order
    ratings: np.ndarray  # their ratings
    asked: int  # records asked about (the sample, or every record)
    requests: int = 0  # requests sent this run (retries included)
    cached: int = 0  # distinct texts whose rating was already in the cache
    unparsable: int = 0  # distinct texts whose replies held no rating, after every retry
    failed: int = 0  # distinct texts whose requests kept failing
    tokens: int = 0
    failures: dict = field(default_factory=dict)  # reason -> count

    @property
    def unrated(self) -> int:
        return self.asked - len(self.indices)

    def summary(self) -> dict:
        return {"asked": self.asked, "rated": int(len(self.indices)), "unrated": self.unrated,
                "requests": self.requests, "cached_texts": self.cached, "unparsable_texts": self.unparsable,
                "failed_texts": self.failed, "tokens": self.tokens}


class _Tokens:
    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.total = 0

    def add(self, tokens: int) -> None:
        with self.lock:
            self.total += tokens


def rate_texts(prompts: dict[str, str], rubric: Rubric, client: ChatClient, cache: RatingsCache, *,
               concurrency: int = 4, parse_retries: int = 2, quiet: bool = True) -> tuple[dict, RateResult]:
    """Ratings of distinct filled prompts (key -> prompt): ({key: rating or None}, counts).
    A CarSelectError from the endpoint (bad key, unknown model) stops every worker and propagates."""
    from tqdm.auto import tqdm

    result = RateResult(np.zeros(0, np.int64), np.zeros(0), 0)
    ratings: dict[str, float | None] = dict(cache.get_many(prompts))
    result.cached = len(ratings)
    todo = [k for k in prompts if k not in ratings]
    tokens = _Tokens()
    sent_before = client.sent
    bar = tqdm(total=len(todo), desc="rate", unit="req", disable=quiet or not todo, dynamic_ncols=True)

    def one(key: str):
        for _ in range(parse_retries + 1):
            try:
                reply = client.ask(rubric.system, prompts[key])
            except EndpointGaveUp as e:
                return key, None, f"failed: {e}"
            tokens.add(reply.tokens)
            value = parse_rating(reply.text, rubric.scale)
            if value is not None:
                cache.put(key, value, reply.text, reply.tokens, client.model)
                return key, value, None
        return key, None, f"no rating{'' if rubric.scale is None else ' in %g-%g' % rubric.scale} in "\
            f"{parse_retries + 1} replies"

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            pending = {pool.submit(one, key) for key in todo}
            try:
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                    for future in done:
                        key, value, reason = future.result()  # a CarSelectError propagates from here
                        ratings[key] = value
                        if reason:
                            kind = "failed" if reason.startswith("failed") else "unparsable"
                            setattr(result, kind, getattr(result, kind) + 1)
                            result.failures[reason] = result.failures.get(reason, 0) + 1
                        bar.update(1)
                    bar.set_postfix(tokens=f"{tokens.total:,}", unrated=result.unparsable + result.failed,
                                    refresh=False)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    finally:
        bar.close()
    result.requests, result.tokens = client.sent - sent_before, tokens.total
    return ratings, result


def record_prompts(records: Sequence, indices: Sequence[int], rubric: Rubric, client: ChatClient
                   ) -> tuple[dict[str, str], list[list[str]]]:
    """({cache key: filled prompt} of every distinct exchange, each record's keys)."""
    prompts, keys_per_record = {}, []
    settings = client.settings()
    for i in indices:
        keys = []
        for u, inp, a in records[i].exchanges():
            prompt = rubric.fill(u, inp, a)
            key = rating_key(client.model, rubric.system, prompt, settings)
            prompts[key] = prompt
            keys.append(key)
        keys_per_record.append(keys)
    return prompts, keys_per_record


def rate_records(records: Sequence, indices: Sequence[int], rubric: Rubric, client: ChatClient,
                 cache: RatingsCache, *, concurrency: int = 4, parse_retries: int = 2,
                 quiet: bool = True) -> RateResult:
    """Rate records[indices]; the result holds the rated ones (mean over each record's exchanges)."""
    indices = np.asarray(indices, dtype=np.int64)
    prompts, keys_per_record = record_prompts(records, indices, rubric, client)
    ratings, result = rate_texts(prompts, rubric, client, cache, concurrency=concurrency,
                                 parse_retries=parse_retries, quiet=quiet)
    kept, values = [], []
    for i, keys in zip(indices, keys_per_record):
        got = [ratings.get(k) for k in keys]
        if all(v is not None for v in got):
            kept.append(i)
            values.append(float(np.mean(got)))
    result.indices, result.ratings, result.asked = np.asarray(kept, np.int64), np.asarray(values), len(indices)
    return result


# ---- the command's whole job ----------------------------------------------------------------------

def api_key_from(env_name: str | None) -> str | None:
    """The key in environment variable `env_name` (None: no key is sent)."""
    if env_name is None:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise SettingError(f"the environment variable {env_name} named by {{}} is "
                           f"{'empty' if key == '' else 'not set'}", "api_key_env")
    return key


def rate_dataset(dataset, rubric: Rubric, client: ChatClient, *, output: str, outputs=None,
                 output_format: str | None = None, sample: int | None = None, seed: int = 42,
                 rating_field: str = "rating", overwrite_field: bool = False, concurrency: int = 4,
                 parse_retries: int = 2, cache_dir: str | os.PathLike | None = None, check_endpoint: bool = True,
                 quiet: bool = True) -> RateResult:
    """Rate `dataset`'s records (a seeded sample of `sample` spread over topics, or all) and write
    the rated ones, unchanged but for one more field `rating_field`, to `output` (atomically; nothing
    is written when the run fails). cache_dir: where the ratings cache lives (None: the default)."""
    from ..api import plan_outputs
    from ..config import default_cache_dir

    if outputs is None:
        outputs = plan_outputs(dataset, output=output, output_format=output_format)
    if not isinstance(rating_field, str) or not rating_field.strip():
        raise SettingError(f"{{}} must name a field, got {rating_field!r}", "rating_field")
    if sample is not None and sample < 1:
        raise SettingError(f"{{}} must be >= 1, got {sample}", "sample")
    if concurrency < 1:
        raise SettingError(f"{{}} must be >= 1, got {concurrency}", "concurrency")
    if not overwrite_field:
        from ..given_scores import refuse_existing_field

        refuse_existing_field(dataset, rating_field, "rating_field")
    records = dataset.records
    if not records:
        raise CarSelectError(f"{dataset.path}: no records to rate")
    if check_endpoint:
        client.check_reachable()
    indices = sample_indices(records, sample, seed) if sample else np.arange(len(records))
    cache = RatingsCache.in_folder(cache_dir or default_cache_dir())
    try:
        with outputs.transaction():
            result = rate_records(records, indices, rubric, client, cache, concurrency=concurrency,
                                  parse_retries=parse_retries, quiet=quiet)
            if not len(result.indices):
                raise CarSelectError(f"no record was rated ({_failures(result)}); nothing written")
            out = outputs.outputs[0]
            from ..formats.sources import write_selection

            write_selection(dataset, result.indices, outputs.temp(out), out.kind == "dir", output_format,
                            add_columns={rating_field: [float(r) for r in result.ratings]})
    finally:
        cache.close()
    if result.unrated:
        warnings.warn(f"{result.unrated:,} of {result.asked:,} records unrated ({_failures(result)}); they are "
                      "left out of the output, and a rerun asks again only for them", CarSelectWarning)
    return result


def _failures(result: RateResult) -> str:
    parts = [f"{n:,} texts: {reason}" for reason, n in sorted(result.failures.items())]
    return "; ".join(parts) or "no reply"
