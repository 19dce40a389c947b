"""The Ray engine selects exactly what the local engine selects (same records, reasons, clusters).

A local Ray cluster (2 CPUs) is started once for the module; everything that needs Ray is skipped
with a reason when Ray is not installed. The scorer is the shipped default when it exists, else a
MiniLM scorer with a seeded random head (the engines must agree whatever the head is).
"""

from __future__ import annotations

import json
import logging
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from car_select.config import Config
from car_select.errors import CarSelectError
from car_select.formats import read_dataset
from car_select.records import Record

REPO = Path(__file__).resolve().parents[2]
from datapaths import SHARED_DATA  # noqa: E402

ALPACA = SHARED_DATA / "stanford-alpaca-52k" / "alpaca_data.json"
DEFAULT_SCORER = REPO / "src" / "car_select" / "default_scorer" / "config.json"
N = 300
DUPLICATES = [(5, 120), (17, 250), (5, 299)]  # (copied row, inserted before row): identical records


def alpaca_rows() -> list[dict]:
    """~300 Alpaca rows (a real slice when the shared data is there), with 3 exact duplicates."""
    if ALPACA.is_file():
        rows = json.loads(ALPACA.read_text())[1000:1000 + N]
    else:
        rng = random.Random(0)
        topics = ["rivers", "prime numbers", "photosynthesis", "haiku", "sorting", "tea", "volcanoes", "chess"]
        verbs = ["Explain", "Summarize", "Write a poem about", "List three facts about", "Describe"]
        rows = []
        for i in range(N):
            topic, verb = rng.choice(topics), rng.choice(verbs)
            words = " ".join(rng.choice(["a", "the", "small", "river", "number", "leaf", "sun", "rule"])
                             for _ in range(rng.randint(5, 60)))
            rows.append({"instruction": f"{verb} {topic}.", "input": "" if i % 3 else f"context {i}",
                         "output": f"{topic.capitalize()}: {words}."})
    for src, at in DUPLICATES:
        rows.insert(at, dict(rows[src]))
    return rows


def to_record(row: dict) -> Record:
    return Record(instruction=row["instruction"], input=row.get("input") or "", output=row["output"])


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return alpaca_rows()


@pytest.fixture(scope="module")
def records(rows) -> list[Record]:
    return [to_record(r) for r in rows]


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory) -> str | None:
    if DEFAULT_SCORER.is_file():
        return None
    import torch

    from car_select.scoring.scorer import Scorer

    path = tmp_path_factory.mktemp("scorer")
    torch.manual_seed(0)
    Scorer.new("all-MiniLM-L6-v2").save(path)
    return str(path)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    """One feature cache for the module: the first Ray run fills it (features computed in the actors)."""
    return str(tmp_path_factory.mktemp("feature-cache"))


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the Ray engine tests need Ray: pip install 'car-select[ray]'")
    pytest.importorskip("ray.data", reason="the Ray engine tests need Ray Data: pip install 'car-select[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def config_for(scorer_dir, cache_dir, **changes) -> Config:
    return Config(n1=20, n2=1, cache_dir=cache_dir, scorer=scorer_dir, **changes)


# --------------------------------------------------------------------------------------------------
# without Ray


def test_missing_ray_is_one_line_error(monkeypatch, records):
    from car_select.engines import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(CarSelectError) as err:
        ray_engine.select_with_ray(records[:5], Config())
    assert str(err.value) == "the Ray engine needs: pip install 'car-select[ray]'"
    with pytest.raises(CarSelectError, match=r"pip install 'car-select\[ray\]'"):
        ray_engine.run_ray_files(str(ALPACA), "unused-out")  # fails before touching any file


def test_resolve_files(tmp_path):
    from car_select.engines.ray_engine import resolve_files

    shards = tmp_path / "shards"
    (shards / "sub").mkdir(parents=True)
    for name in ("b.jsonl", "a.jsonl", "sub/c.jsonl.gz", ".hidden.jsonl", "_SUCCESS", "notes.txt"):
        (shards / name).write_text("{}\n")
    _, files, fmt = resolve_files(str(shards))
    assert fmt == "json"
    assert [Path(f).relative_to(shards).as_posix() for f in files] == ["a.jsonl", "b.jsonl", "sub/c.jsonl.gz"]
    _, files, _ = resolve_files(str(shards / "*.jsonl"))
    assert [Path(f).name for f in files] == [".hidden.jsonl", "a.jsonl", "b.jsonl"]  # a glob is taken literally
    (shards / "d.parquet").write_text("")
    with pytest.raises(CarSelectError, match="mixes JSON and Parquet"):
        resolve_files(str(shards))
    with pytest.raises(CarSelectError, match="no such file or directory"):
        resolve_files(str(tmp_path / "missing"))
    with pytest.raises(CarSelectError, match="cannot tell the file format"):
        resolve_files(str(shards / "notes.txt"))
    with pytest.raises(CarSelectError, match="reads json, jsonl or parquet"):
        resolve_files(str(shards / "a.jsonl"), file_format="csv")


# --------------------------------------------------------------------------------------------------
# with a local Ray cluster


@pytest.mark.slow
def test_select_with_ray_equals_local_engine(ray_cluster, records, scorer_dir, cache_dir):
    from car_select.engines.ray_engine import select_with_ray
    from car_select.pipeline import select

    config = config_for(scorer_dir, cache_dir)
    assert len(records) <= config.fit_sample  # the fit sample covers every row in both engines
    on_ray = select_with_ray(records, config)  # cold cache: scored and embedded in the Ray actors
    local = select(records, config)  # warm: the features the actors wrote

    n_unique = len(records) - len(DUPLICATES)
    assert on_ray.cache_hits == 0 and local.cache_hits == n_unique
    np.testing.assert_array_equal(on_ray.indices, local.indices)
    assert on_ray.reasons == local.reasons
    np.testing.assert_array_equal(on_ray.clusters, local.clusters)
    np.testing.assert_array_equal(on_ray.scores, local.scores)
    np.testing.assert_array_equal(on_ray.duplicate_of, local.duplicate_of)
    np.testing.assert_array_equal(on_ray.unique, local.unique)
    np.testing.assert_allclose(on_ray.reduced, local.reduced, rtol=0, atol=1e-5)
    assert (on_ray.k, on_ray.pca_components, on_ray.encoder_passes) == (local.k, local.pca_components, 1)
    assert on_ray.k == int((n_unique / 2) ** 0.5)
    assert on_ray.pca_variance_explained == pytest.approx(local.pca_variance_explained)
    assert on_ray.inertia == pytest.approx(local.inertia)
    assert set(on_ray.reasons) == {"top_n1", "cluster_top"} and on_ray.reasons.count("top_n1") == 20
    summary, expected = on_ray.summary(), local.summary()
    for key in ("records_read", "duplicates_dropped", "k", "selected", "selected_top_n1", "clusters_covered"):
        assert summary[key] == expected[key], key
    assert {"ray_init", "render", "score_embed", "cluster", "select"} <= set(on_ray.stage_seconds)

    # the actors compute what the local engine computes (not just pass cached values through)
    cold = select(records, config.replace(use_cache=False))
    np.testing.assert_allclose(cold.scores, on_ray.scores, rtol=0, atol=2e-2)


def write_shards(rows: list[dict], folder: Path, parts: int = 3) -> None:
    folder.mkdir(parents=True)
    size = -(-len(rows) // parts)
    for p in range(parts):
        with open(folder / f"part-{p:05d}.jsonl", "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows[p * size:(p + 1) * size])


def read_jsonl_folder(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.iterdir()) if not path.name.startswith((".", "_"))
            for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_run_ray_files_writes_the_local_selection(ray_cluster, rows, scorer_dir, cache_dir, tmp_path):
    from car_select.engines.ray_engine import run_ray_files
    from car_select.pipeline import select

    config = config_for(scorer_dir, cache_dir)
    write_shards(rows, tmp_path / "shards")
    summary = run_ray_files(tmp_path / "shards", tmp_path / "selected", config,
                            annotated_dir=tmp_path / "annotated")

    # the local engine on the same records, in the same order (shards by name, rows by line)
    shards = sorted((tmp_path / "shards").iterdir())
    local = select([record for path in shards for record in read_dataset(path).records], config)

    written = read_jsonl_folder(tmp_path / "selected")
    assert written == [rows[i] for i in local.indices]  # same raw records, in selection order
    annotated = read_jsonl_folder(tmp_path / "annotated")
    expected = list(local.annotations())
    assert [a["index"] for a in annotated] == list(range(len(rows)))
    for got, want in zip(annotated, expected):
        assert (got["selected"], got["reason"], got["cluster"]) == (want["selected"], want["reason"], want["cluster"])
        assert np.float32(got["score"]) == np.float32(want["score"])
    assert summary["records_read"] == len(rows)
    assert summary["duplicates_dropped"] == len(DUPLICATES) == local.duplicates_dropped
    assert summary["k"] == local.k and summary["selected"] == len(local.indices)
    assert summary["clusters_covered"] == local.summary()["clusters_covered"]
    assert summary["cache_hits"] == len(rows) - len(DUPLICATES)  # the first test filled the cache
    assert summary["input_files"] == 3 and summary["schema"] == "alpaca"

    with pytest.raises(CarSelectError, match="already exists"):
        run_ray_files(tmp_path / "shards", tmp_path / "selected", config)


@pytest.mark.slow
def test_bad_record_is_one_line_error(ray_cluster, rows, scorer_dir, cache_dir, tmp_path):
    from car_select.engines.ray_engine import run_ray_files

    broken = [dict(r) for r in rows[:6]]
    del broken[4]["output"]
    write_shards(broken, tmp_path / "shards", parts=2)
    with pytest.raises(CarSelectError) as err:
        run_ray_files(tmp_path / "shards", tmp_path / "out", config_for(scorer_dir, cache_dir))
    message = str(err.value)
    assert "\n" not in message and "record 4" in message and 'field "output"' in message, message

    broken[4]["output"] = 7  # a field whose type changes between records: Ray's JSON reader fails
    write_shards(broken, tmp_path / "mixed", parts=1)
    with pytest.raises(CarSelectError, match="cannot read the input json files") as err:
        run_ray_files(tmp_path / "mixed", tmp_path / "out", config_for(scorer_dir, cache_dir))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_parquet_row_ids_follow_file_and_row_order(ray_cluster, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from car_select.engines.ray_engine import GID, _collect, read_with_ids, resolve_files

    folder = tmp_path / "pq"
    folder.mkdir()
    for p, size in enumerate([7, 0, 5, 9]):
        start = sum([7, 0, 5, 9][:p])
        pq.write_table(pa.table({"instruction": [f"i{start + i}" for i in range(size)],
                                 "output": ["o"] * size}, schema=pa.schema([("instruction", pa.string()),
                                                                            ("output", pa.string())])),
                       folder / f"shard-{p}.parquet")
    fs, files, fmt = resolve_files(str(folder))
    table, n, columns = read_with_ids(ray_cluster, fs, files, fmt)
    got = _collect(table, [GID, "instruction"])
    assert n == 21 and columns == ["instruction", "output"]
    assert got[GID].tolist() == list(range(21))
    assert list(got["instruction"]) == [f"i{i}" for i in range(21)]


def test_encoder_pool_plan():
    """One actor per GPU with one GPU each where the cluster has GPUs; else CPU actors of up to 8
    threads that fit on the smallest node (no Ray needed: a stand-in answers the resource queries)."""
    from car_select.engines.ray_engine import encoder_pool

    class FakeRay:
        def __init__(self, resources, nodes):
            self.resources, self.node_cpus = resources, nodes

        def cluster_resources(self):
            return self.resources

        def nodes(self):
            return [{"Alive": True, "Resources": {"CPU": c}} for c in self.node_cpus]

    gpus = FakeRay({"CPU": 32.0, "GPU": 4.0}, [16, 16])
    assert encoder_pool(gpus, Config()) == {"size": 4, "num_cpus": 1, "num_gpus": 1, "threads": None}
    assert encoder_pool(gpus, Config(device="cpu"))["num_gpus"] == 0
    assert encoder_pool(FakeRay({"CPU": 40.0}, [32, 4, 4]), Config()) == {
        "size": 10, "num_cpus": 4, "num_gpus": 0, "threads": 4}
    assert encoder_pool(FakeRay({"CPU": 2.0}, [2]), Config(), actors=3)["size"] == 3
    assert encoder_pool(FakeRay({"CPU": 2.0}, [2]), Config()) == {"size": 1, "num_cpus": 2, "num_gpus": 0, "threads": 2}
