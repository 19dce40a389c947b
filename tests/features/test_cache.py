"""The feature cache cannot poison a run: unreadable shards are skipped (and recomputed), the namespace
carries the format and the batch layout, lookups read only the shards that hold hits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from car_select.cache import CACHE_FORMAT, FeatureCache, cache_info, namespace_for, prune_cache, text_keys
from car_select.config import Config
from car_select.errors import CarSelectWarning


def feats(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"scores": rng.normal(size=n).astype(np.float32),
            "embeddings": rng.normal(size=(n, 8)).astype(np.float32),
            "counts": rng.integers(1, 50, size=n).astype(np.int64)}


def test_lookup_across_shards_returns_rows_in_key_order(tmp_path):
    cache = FeatureCache(tmp_path, "ns")
    keys = text_keys([f"text {i}" for i in range(30)])
    f = feats(30)
    cache.put(keys[:10], {k: v[:10] for k, v in f.items()})
    cache.put(keys[10:30], {k: v[10:30] for k, v in f.items()})
    fresh = FeatureCache(tmp_path, "ns")
    query = np.concatenate([keys[[25, 3, 14]], text_keys(["absent"]), keys[[0]]])
    found, got = fresh.lookup(query)
    assert found.tolist() == [True, True, True, False, True]
    for name in f:
        assert np.array_equal(got[name], f[name][[25, 3, 14, 0]])
    assert len(fresh) == 30


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong arrays"])
def test_unreadable_shard_is_skipped_warned_and_removed(tmp_path, damage):
    cache = FeatureCache(tmp_path, "ns")
    keys = text_keys([f"t{i}" for i in range(20)])
    f = feats(20)
    cache.put(keys[:10], {k: v[:10] for k, v in f.items()})
    cache.put(keys[10:], {k: v[10:] for k, v in f.items()})
    victim = sorted((tmp_path / "ns").glob("shard-*.npz"))[0]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        victim.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    elif damage == "empty":
        victim.write_bytes(b"")
    else:
        np.savez(victim.open("wb"), keys=keys[:3], scores=np.zeros(5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found, got = FeatureCache(tmp_path, "ns").lookup(keys)
    assert any(issubclass(w.category, CarSelectWarning) and "unreadable cache shard" in str(w.message)
               for w in caught)
    assert found.sum() == 10  # the good shard still answers
    assert not victim.exists()  # and the bad one will not be met again


def test_lookup_reads_only_shards_with_hits(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path, "ns")
    for s in range(5):
        keys = text_keys([f"s{s} t{i}" for i in range(10)])
        cache.put(keys, feats(10, s))
    fresh = FeatureCache(tmp_path, "ns")
    reads = []
    real = FeatureCache._read_rows

    def counting(self, shard, keys):
        reads.append(shard.path)
        return real(self, shard, keys)

    monkeypatch.setattr(FeatureCache, "_read_rows", counting)
    found, _ = fresh.lookup(text_keys(["s3 t1", "s3 t7"]))
    assert found.all() and len(reads) == 1


def test_namespace_has_format_and_batch_layout():
    a, settings = namespace_for("model-fp", Config(device="cpu", batch_tokens=1024))
    b, _ = namespace_for("model-fp", Config(device="cpu", batch_tokens=512))
    c, _ = namespace_for("model-fp", Config(device="cpu", batch_tokens=1024))
    assert a.startswith(f"v{CACHE_FORMAT}-model-fp-") and a != b and a == c
    assert settings["layout"]["batch_tokens"] == 1024


def test_encoder_knobs_key_the_cache_by_their_config_values_not_the_environment(monkeypatch):
    for name in ("CAR_SELECT_FAST_ENCODER", "CAR_SELECT_CPU_BATCH_TOKENS", "CAR_SELECT_ENCODE_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    plain, settings = namespace_for("m", Config(device="cpu"))
    assert settings["layout"] == {"device": "cpu", "batch_tokens": 4096, "fast_encoder": True,
                                  "encode_workers": "default"}
    monkeypatch.setenv("CAR_SELECT_CPU_BATCH_TOKENS", "2048")
    monkeypatch.setenv("CAR_SELECT_ENCODE_WORKERS", "3")
    monkeypatch.setenv("CAR_SELECT_FAST_ENCODER", "0")
    from_env = Config(device="cpu")  # the variables set the fields' defaults ...
    assert (from_env.cpu_batch_tokens, from_env.encode_workers, from_env.fast_encoder) == (2048, 3, False)
    assert namespace_for("m", from_env)[1]["layout"] == {"device": "cpu", "batch_tokens": 2048,
                                                        "fast_encoder": False, "encode_workers": "3"}
    # ... and nothing more: fields given explicitly key the cache as they do without the variables
    explicit = Config(device="cpu", cpu_batch_tokens=4096, encode_workers=None, fast_encoder=True)
    assert namespace_for("m", explicit)[0] == plain


def test_a_malformed_encoder_variable_is_a_one_line_error(monkeypatch):
    from car_select.errors import CarSelectError

    monkeypatch.setenv("CAR_SELECT_ENCODE_WORKERS", "two")
    with pytest.raises(CarSelectError, match=r"^environment variable CAR_SELECT_ENCODE_WORKERS must be an integer "
                                             r">= 1, got 'two'$"):
        Config()


def test_shard_folder_and_files_leave_no_temporaries(tmp_path):
    cache = FeatureCache(tmp_path, "ns", {"format": CACHE_FORMAT})
    cache.put(text_keys(["a"]), feats(1))
    names = sorted(p.name for p in (tmp_path / "ns").iterdir())
    assert names[0] == "namespace.json" and names[1].startswith("shard-") and len(names) == 2


def test_prune_removes_unreadable_shards_and_old_formats(tmp_path):
    current = FeatureCache(tmp_path, f"v{CACHE_FORMAT}-m-Labc")
    current.put(text_keys(["a"]), feats(1))
    current.put(text_keys(["b"]), feats(1))
    bad = sorted((tmp_path / f"v{CACHE_FORMAT}-m-Labc").glob("shard-*.npz"))[0]
    bad.write_bytes(b"junk")
    FeatureCache(tmp_path, "m-unversioned").put(text_keys(["a"]), feats(1))
    info = {i["namespace"]: i for i in cache_info(tmp_path)}
    assert info[f"v{CACHE_FORMAT}-m-Labc"]["unreadable_shards"] == 1
    assert prune_cache(tmp_path, dry_run=True) and bad.exists()
    removed = prune_cache(tmp_path)
    assert str(bad) in removed and str(tmp_path / "m-unversioned") in removed
    assert [i["namespace"] for i in cache_info(tmp_path)] == [f"v{CACHE_FORMAT}-m-Labc"]
    assert prune_cache(tmp_path, everything=True) and cache_info(tmp_path) == []


def test_truncated_shard_does_not_break_later_runs(tmp_path, random_head_scorer_dir):
    from car_select.pipeline import select
    from car_select.records import Record

    records = [Record(instruction=f"Write item {i}.", output=f"Item {i} " * (i % 7 + 1)) for i in range(24)]
    config = Config(n1=4, scorer=random_head_scorer_dir, cache_dir=str(tmp_path))
    first = select(records, config)
    for shard in tmp_path.rglob("shard-*.npz"):
        shard.write_bytes(shard.read_bytes()[:100])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CarSelectWarning)
        second = select(records, config)
    third = select(records, config)
    assert second.cache_hits == 0 and third.cache_hits == 24
    assert first.indices.tolist() == second.indices.tolist() == third.indices.tolist()


def _alpaca_like(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    words = ["river", "number", "leaf", "sun", "rule", "small", "quickly", "because", "tea", "volcano", "chess"]
    return [{"instruction": f"Describe thing {seed}-{i} briefly.", "input": "" if i % 3 else f"note {i}",
             "output": " ".join(rng.choice(words, size=int(rng.integers(2, 70)))) + "."} for i in range(n)]


def test_a_cache_warmed_by_a_superset_gives_the_bytes_of_a_fresh_run(tmp_path):
    """Features do not depend on which texts were computed together (one token count per batch), so
    a selection read from a cache that a bigger run filled is the one a fresh cache gives, byte for byte.
    The shipped scorer in the run's precision (bf16 on CPUs with it), where the batch shape mattered."""
    import json

    from car_select.api import run

    subset, others = _alpaca_like(90, seed=1), _alpaca_like(160, seed=2)
    (tmp_path / "subset.json").write_text(json.dumps(subset))
    (tmp_path / "superset.json").write_text(json.dumps(others[:80] + subset[::-1] + others[80:]))

    def select_subset(cache: str, name: str):
        config = Config(cache_dir=str(tmp_path / cache), n1=12, n2=1)
        out = tmp_path / name
        out.mkdir()
        result = run(str(tmp_path / "subset.json"), config, output=str(out / "selected.json"),
                     annotated=str(out / "annotated.jsonl"))
        return result.selection.cache_hits, (out / "selected.json").read_bytes(), (out / "annotated.jsonl").read_bytes()

    hits_fresh, selected_fresh, annotated_fresh = select_subset("fresh", "a")
    run(str(tmp_path / "superset.json"), Config(cache_dir=str(tmp_path / "warm"), n1=12, n2=1),
        output=str(tmp_path / "superset-selected.json"))
    hits_warm, selected_warm, annotated_warm = select_subset("warm", "b")
    assert hits_fresh == 0 and hits_warm == len(subset)  # every feature of the second run came from the cache
    assert selected_warm == selected_fresh
    assert annotated_warm == annotated_fresh  # scores and clusters too, not only which records
