"""One pipeline, two executors: the Ray executor gives exactly the local executor's selection and
writes the same bytes, for JSON, JSON Lines, Parquet and sharded (mixed) input; a scorer object
passed to `select` is the one the Ray workers score with.

A local Ray cluster (2 CPUs) is started once for the module; everything that needs Ray is skipped
with a reason when Ray is not installed. The scorer is the shipped default when it exists, else a
MiniLM scorer with a seeded random head (the engines must agree whatever the head is).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from car_select.config import Config
from car_select.errors import CarSelectError
from car_select.records import Record

REPO = Path(__file__).resolve().parents[2]
from datapaths import SHARED_DATA  # noqa: E402

ALPACA = SHARED_DATA / "stanford-alpaca-52k" / "alpaca_data.json"
DEFAULT_SCORER = REPO / "src" / "car_select" / "scorers" / "default" / "config.json"
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


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return alpaca_rows()


@pytest.fixture(scope="module")
def records(rows) -> list[Record]:
    return [Record(instruction=r["instruction"], input=r.get("input") or "", output=r["output"]) for r in rows]


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
def caches(tmp_path_factory) -> dict[str, str]:
    """One feature cache per engine: the engines never share computed features."""
    return {e: str(tmp_path_factory.mktemp(f"cache-{e}")) for e in ("local", "ray")}


def config_for(scorer_dir, cache_dir, **changes) -> Config:
    # fit_sample below the distinct records: both engines must fit on the same seeded sample
    return Config(n1=20, n2=1, cache_dir=cache_dir, scorer=scorer_dir, fit_sample=150, **changes)


# --------------------------------------------------------------------------------------------------
# without Ray


def test_missing_ray_is_one_line_error(monkeypatch, records, tmp_path):
    from car_select import api
    from car_select.executors import executor_for

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(CarSelectError) as err:
        executor_for("ray")
    assert str(err.value) == "the Ray engine needs: pip install 'car-select[ray]'"
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "a", "output": "b"}\n')
    with pytest.raises(CarSelectError, match=r"pip install 'car-select\[ray\]'"):
        api.run(str(src), Config(), output=str(tmp_path / "out.jsonl"), engine="ray")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_list_files(tmp_path):
    from car_select.formats.sources import list_files

    shards = tmp_path / "shards"
    (shards / "sub").mkdir(parents=True)
    (shards / "_tmp").mkdir()
    for name in ("b.jsonl", "a.jsonl", "sub/c.jsonl.gz", ".hidden.jsonl", "_SUCCESS", "notes.txt", "_tmp/x.jsonl",
                 "d.parquet"):
        (shards / name).write_text("{}\n")
    assert [Path(f).relative_to(shards).as_posix() for f in list_files(str(shards))] == [
        "a.jsonl", "b.jsonl", "d.parquet", "sub/c.jsonl.gz"]
    assert [Path(f).name for f in list_files(str(shards / "*.jsonl"))] == ["a.jsonl", "b.jsonl"]
    with pytest.raises(CarSelectError, match="no files match"):
        list_files(str(tmp_path / "*.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CarSelectError, match="no .json, .jsonl, .csv or .parquet files"):
        list_files(str(tmp_path / "empty"))


def test_both_executors_implement_the_contract():
    from car_select.executors import Executor, LocalExecutor, executor_for
    from car_select.executors.ray import RayExecutor

    assert isinstance(executor_for("local"), LocalExecutor)
    for cls in (LocalExecutor, RayExecutor):
        assert issubclass(cls, Executor) and not getattr(cls, "__abstractmethods__", None), cls
    with pytest.raises(CarSelectError, match="engine must be 'local' or 'ray', got 'spark'"):
        executor_for("spark")


def test_featurize_pool_plan():
    """One actor per GPU with one GPU each where the cluster has GPUs; else CPU actors of up to 8
    threads that fit on the smallest node (a stand-in answers Ray's resource queries)."""
    from car_select.executors.ray import RayExecutor
    from car_select.stages import Featurize

    class FakeRay:
        def __init__(self, resources, nodes):
            self.resources, self.node_cpus = resources, nodes

        def cluster_resources(self):
            return self.resources

        def nodes(self):
            return [{"Alive": True, "Resources": {"CPU": c}} for c in self.node_cpus]

    class Stub:
        actors = None

    def plan(fake, config=Config(), actors=None):
        stub = Stub()
        stub.actors = actors
        return RayExecutor.pool(stub, fake, Featurize(config))

    gpus = FakeRay({"CPU": 32.0, "GPU": 4.0}, [16, 16])
    assert plan(gpus) == {"size": 4, "num_cpus": 1, "num_gpus": 1, "threads": None}
    assert plan(gpus, Config(device="cpu"))["num_gpus"] == 0
    assert plan(FakeRay({"CPU": 40.0}, [32, 4, 4])) == {"size": 10, "num_cpus": 4, "num_gpus": 0, "threads": 4}
    assert plan(FakeRay({"CPU": 2.0}, [2]), actors=3)["size"] == 3


# --------------------------------------------------------------------------------------------------
# with a local Ray cluster


@pytest.mark.slow
def test_engines_agree_exactly_without_sharing_a_cache(ray_cluster, records, scorer_dir, caches):
    from car_select.executors.ray import RayExecutor
    from car_select.pipeline import select

    on_ray = select(records, config_for(scorer_dir, caches["ray"]), executor=RayExecutor())  # cold: in the actors
    local = select(records, config_for(scorer_dir, caches["local"]))  # cold: computed here

    n_unique = len(records) - len(DUPLICATES)
    assert on_ray.cache_hits == 0 and local.cache_hits == 0 and n_unique > 150
    np.testing.assert_array_equal(on_ray.scores, local.scores)
    np.testing.assert_array_equal(on_ray.indices, local.indices)
    assert on_ray.reasons == local.reasons
    np.testing.assert_array_equal(on_ray.clusters, local.clusters)
    np.testing.assert_array_equal(on_ray.duplicate_of, local.duplicate_of)
    np.testing.assert_allclose(on_ray.reduced, local.reduced, rtol=0, atol=1e-5)
    assert (on_ray.k, on_ray.pca_components, on_ray.encoder_passes) == (local.k, local.pca_components, 1)
    assert on_ray.inertia == pytest.approx(local.inertia)
    assert list(on_ray.annotations()) == list(local.annotations())
    summary, expected = on_ray.summary(), local.summary()
    for key in ("records_read", "duplicates_dropped", "k", "selected", "selected_top_n1", "clusters_covered",
                "scored"):  # texts_cut: counted in the actors, summed by the driver
        assert summary[key] == expected[key], key


@pytest.mark.slow
def test_a_subset_on_ray_scores_as_inside_the_whole_set_locally(ray_cluster, records, scorer_dir, caches, tmp_path):
    """Batch-invariant features across executors: every third record scored by the Ray actors from a
    fresh cache gets the bits the local executor gives it among all the records (other neighbours,
    other batches, another process)."""
    from car_select.executors.ray import RayExecutor
    from car_select.pipeline import select

    subset = records[::3]
    on_ray = select(subset, config_for(scorer_dir, str(tmp_path / "cache")), executor=RayExecutor())
    whole = select(records, config_for(scorer_dir, caches["local"]))
    assert on_ray.cache_hits == 0
    np.testing.assert_array_equal(on_ray.scores.view(np.uint32), whole.scores[::3].view(np.uint32))


def write_inputs(rows: list[dict], folder: Path) -> dict[str, Path]:
    """The same records as JSON, JSON Lines, Parquet, and shards mixing JSON Lines and Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    (folder / "in.json").write_text(json.dumps(rows, indent=4))
    (folder / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), folder / "in.parquet")
    shards = folder / "shards"
    shards.mkdir()
    (shards / "part-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:100]))
    (shards / "part-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[100:200]))
    pq.write_table(pa.Table.from_pylist(rows[200:]), shards / "part-2.parquet")
    return {"json": folder / "in.json", "jsonl": folder / "in.jsonl", "parquet": folder / "in.parquet",
            "shards": shards}


def tree_bytes(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_run_writes_identical_bytes_on_both_engines(ray_cluster, rows, scorer_dir, caches, tmp_path):
    from car_select import api

    inputs = write_inputs(rows, tmp_path / "in")
    inputs["url-shards"] = inputs["shards"].as_uri()  # file:// through pyarrow's filesystems, as s3:// would be
    outputs = {"json": "sel.json", "jsonl": "sel.jsonl", "parquet": "sel.parquet", "shards": "sel", "url-shards": "sel"}
    for kind, src in inputs.items():
        got = {}
        for engine in ("local", "ray"):
            out = tmp_path / engine / kind
            out.mkdir(parents=True)
            api.run(str(src), config_for(scorer_dir, caches[engine]), engine=engine,
                    output=str(out / outputs[kind]), annotated=str(out / "annotated.jsonl"))
            got[engine] = {**tree_bytes(out / outputs[kind]), "annotated": (out / "annotated.jsonl").read_bytes()}
        assert got["local"] == got["ray"], kind
        assert got["local"]["annotated"].count(b"\n") == len(rows)
    # the sharded selection is a folder of shards holding exactly the selected raw records
    shard_rows = [json.loads(line) for name, data in sorted(tree_bytes(tmp_path / "local" / "shards" / "sel").items())
                  if name.endswith(".jsonl") for line in data.decode().splitlines()]
    assert len(shard_rows) > 20 and all(r in rows for r in shard_rows)


@pytest.mark.slow
def test_bad_record_in_a_shard_is_one_line_error(ray_cluster, rows, scorer_dir, caches, tmp_path):
    from car_select import api

    shards = tmp_path / "shards"
    shards.mkdir()
    broken = [dict(r) for r in rows[:6]]
    del broken[4]["output"]
    (shards / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in broken[:3]))
    (shards / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in broken[3:]))
    for engine in ("local", "ray"):
        with pytest.raises(CarSelectError) as err:
            api.run(str(shards), config_for(scorer_dir, caches[engine]), output=str(tmp_path / "out.jsonl"),
                    engine=engine)
        message = str(err.value)
        assert "\n" not in message and "b.jsonl" in message and "record 1" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def test_a_subset_rebuilt_from_split_rows_writes_like_the_whole(rows, tmp_path):
    """What the Ray datasink does, without Ray: the files' layouts (`shell`) plus some rows (from
    `split_rows`, in selection order) are written with the same bytes as the whole input's subset,
    also when every selected row comes from the Parquet shard of a mixed input."""
    from car_select.formats import read_dataset
    from car_select.formats.sources import combine, list_files, shell, split_rows, write_selection

    src = write_inputs(rows, tmp_path / "in")["shards"]
    parts = [read_dataset(f) for f in list_files(str(src))]
    whole = combine(str(src), parts)
    pieces = [(r, raw) for p in parts for r, raw in zip(p.records, split_rows(p))]
    for picked in ([250, 3, 120, 299, 7], [210, 205, 290]):  # mixed files; only the Parquet shard
        subset = combine(str(src), [shell(p) for p in parts], records=[pieces[i][0] for i in picked],
                         rows=[pieces[i][1] for i in picked])
        for name in ("a.jsonl", "a.parquet", "a.json"):
            write_selection(whole, picked, str(tmp_path / f"whole-{name}"), False)
            write_selection(subset, range(len(picked)), str(tmp_path / f"subset-{name}"), False)
            assert (tmp_path / f"whole-{name}").read_bytes() == (tmp_path / f"subset-{name}").read_bytes(), name


@pytest.mark.slow
def test_ray_read_keeps_raw_rows_on_the_workers(ray_cluster, rows, tmp_path):
    """The Ray executor reads through its datasource: the driver's Dataset has the records and the
    layout, not the raw rows, and refuses to be written except through the executor."""
    from car_select.api import read_input
    from car_select.executors import LocalExecutor
    from car_select.executors.ray import RayExecutor

    src = write_inputs(rows, tmp_path / "in")["shards"]
    on_ray = read_input(str(src), executor=RayExecutor())
    local = read_input(str(src), executor=LocalExecutor())
    assert on_ray.records == local.records
    assert (on_ray.file_format, on_ray.schema) == (local.file_format, local.schema)
    assert on_ray._rows is None and on_ray._table is None and on_ray._held is not None
    with pytest.raises(RuntimeError, match="write through it"):
        from car_select.formats import write_subset

        write_subset(on_ray, [0], str(tmp_path / "x.jsonl"))


def own_scorer(dtype: str = "bf16"):
    """A MiniLM scorer with its own seeded random head, in `dtype`: its scores are nobody else's."""
    import torch

    from car_select.scoring.scorer import Scorer

    torch.manual_seed(123)
    return Scorer.new("all-MiniLM-L6-v2", {"hidden_sizes": [32]}).eval_mode().to("cpu", dtype)


@pytest.mark.slow
def test_a_scorer_object_passed_to_select_is_the_one_used_on_ray(ray_cluster, records, scorer_dir, tmp_path):
    from car_select.executors.ray import RayExecutor
    from car_select.pipeline import select

    subset = records[:80]
    scorer = own_scorer()

    def config(name):
        return config_for(scorer_dir, str(tmp_path / name))

    on_ray = select(subset, config("ray"), scorer=scorer, executor=RayExecutor())
    local = select(subset, config("local"), scorer=scorer)
    configured = select(subset, config("configured"), executor=RayExecutor())  # config.scorer, no object
    np.testing.assert_array_equal(on_ray.scores, local.scores)
    np.testing.assert_array_equal(on_ray.indices, local.indices)
    assert np.abs(on_ray.scores - configured.scores).max() > 1e-3  # a different scorer's scores
    assert str(scorer.dtype) == "torch.bfloat16"  # shipping it left the caller's object as it was


def test_a_scorer_that_cannot_travel_to_ray_is_refused_in_one_line(records):
    pytest.importorskip("ray", reason="needs Ray: pip install 'car-select[ray]'")
    from car_select.executors.ray import RayExecutor
    from car_select.pipeline import select

    class MyScorer:  # not a car-select Scorer: it has no saved state to ship
        pass

    with pytest.raises(CarSelectError) as err:
        select(records[:10], Config(n1=2), scorer=MyScorer(), executor=RayExecutor())
    assert str(err.value) == ("scorer: a MyScorer object cannot be sent to Ray workers; pass its path or spec "
                              "as Config.scorer instead")
