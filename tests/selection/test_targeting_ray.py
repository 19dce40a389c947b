"""Local and Ray give the same targeted, decontaminated, balanced selection (the example files are read,
embedded and applied on the driver for both executors), over the demo data."""

from __future__ import annotations

import json
import warnings

import pytest

from car_select.config import Config
from car_select.formats import read_dataset
from datapaths import REPO


@pytest.mark.slow
def test_local_and_ray_agree_with_targets_decontamination_and_balance(ray_cluster, random_head_scorer_dir, tmp_path):
    from car_select.executors.ray import RayExecutor
    from car_select.pipeline import select

    demo = REPO / "examples" / "demo_alpaca.json"
    rows = json.loads(demo.read_text())
    records = read_dataset(str(demo)).records
    targets, tests = tmp_path / "targets.json", tmp_path / "tests.jsonl"
    targets.write_text(json.dumps([{"instruction": r["instruction"]} for r in rows[:3]]))
    tests.write_text("".join(json.dumps({"prompt": r["instruction"]}) + "\n" for r in rows[40:43]))
    values = [r["domain"] for r in rows]
    base = Config(scorer=random_head_scorer_dir, precision="fp32", compare_seeds=0, language_sample=0, fit_sample=150,
                  budget=24, targets=(str(targets),), decontaminate=(str(tests),), balance="domain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for strategy in ("car", "qd"):
            local = select(records, base.replace(cache_dir=str(tmp_path / "local"), strategy=strategy),
                           balance_values=values)
            ray = select(records, base.replace(cache_dir=str(tmp_path / "ray"), strategy=strategy),
                         balance_values=values, executor=RayExecutor())
            assert ray.indices.tolist() == local.indices.tolist(), strategy
            assert list(ray.annotations()) == list(local.annotations()), strategy
            summary = local.summary()
            assert summary["decontamination"]["contaminated"] >= 3 and len(local.indices) == 24
            assert {k: summary[k] for k in ("target", "decontamination", "balance")} == \
                {k: ray.summary()[k] for k in ("target", "decontamination", "balance")}
