"""Local and Ray give the same selection for every strategy (selection runs on the driver, in
pipeline.select, for both executors), over the demo data."""

from __future__ import annotations

import warnings

import pytest

from car_select.config import Config
from car_select.formats import read_dataset
from datapaths import REPO

SETTINGS = {
    "car": {"budget": 30},
    "qd": {"strategy": "qd", "budget": 30},
    "deita": {"strategy": "deita", "budget": 30},
    "qd near-duplicates": {"strategy": "qd", "fraction": 0.1, "near_duplicates": 0.95},
}


@pytest.mark.slow
def test_local_and_ray_select_the_same_for_every_strategy(ray_cluster, random_head_scorer_dir, tmp_path):
    from car_select.executors.ray import RayExecutor
    from car_select.pipeline import select

    records = read_dataset(str(REPO / "examples" / "demo_alpaca.json")).records
    base = Config(scorer=random_head_scorer_dir, precision="fp32", compare_seeds=0, language_sample=0, fit_sample=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, changes in SETTINGS.items():
            local = select(records, base.replace(cache_dir=str(tmp_path / "local"), **changes))
            ray = select(records, base.replace(cache_dir=str(tmp_path / "ray"), **changes), executor=RayExecutor())
            assert ray.indices.tolist() == local.indices.tolist(), name
            assert ray.reasons == local.reasons, name
            assert list(ray.annotations()) == list(local.annotations()), name
            assert ray.summary()["selected"] == len(local.indices) > 0
