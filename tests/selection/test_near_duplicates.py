"""Near-duplicates: groups on a synthetic set, and lightly edited copies of real text caught at 0.95
through the pipeline while distinct records stay."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from car_select import Config, select
from car_select.records import Record
from car_select.selection.near_duplicates import near_duplicates
from datapaths import SHARED_DATA


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_groups_keep_their_best_scored_member():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((60, 32))
    groups = [(i, int(rng.integers(1, 4))) for i in range(0, 60, 3)]  # every third base gets 1-3 edited copies
    rows, group_of = [*base], list(range(60))
    for g, copies in groups:
        for _ in range(copies):
            rows.append(base[g] + 0.02 * rng.standard_normal(32))
            group_of.append(g)
    x, group_of = np.asarray(rows, dtype=np.float32), np.asarray(group_of)
    scores = rng.standard_normal(len(x))
    dup = near_duplicates(scores, x, 0.95)
    for g in range(60):
        members = np.flatnonzero(group_of == g)
        best = members[np.argmax(scores[members])]
        assert dup[best] == -1
        assert (dup[members[members != best]] == best).all()
    assert (dup >= 0).sum() == sum(c for _, c in groups)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 80), st.integers(2, 8), st.sampled_from([0.5, 0.8, 0.95]), st.integers(0, 2**16))
def test_every_dropped_record_names_a_kept_one_at_least_that_similar(n, d, threshold, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    scores = rng.standard_normal(n)
    dup = near_duplicates(scores, x, threshold)
    sims = unit(x.astype(np.float64)) @ unit(x.astype(np.float64)).T
    kept = np.flatnonzero(dup < 0)
    for i in np.flatnonzero(dup >= 0):
        j = dup[i]
        assert dup[j] == -1 and sims[i, j] >= threshold - 1e-5 and scores[j] >= scores[i]
    among = sims[np.ix_(kept, kept)]
    np.fill_diagonal(among, -1)
    assert (among < threshold + 1e-5).all()  # no two kept records are near-duplicates


def light_edits(r: dict, i: int) -> dict:
    """A copy a person would call the same example: spacing, case, punctuation, a short prefix."""
    out = r["output"]
    edit = i % 4
    if edit == 0:
        out = "  " + out.replace(" ", "  ", 3) + " "
    elif edit == 1:
        out = out.lower()
    elif edit == 2:
        out = out.replace(".", "").replace(",", "") + "!"
    else:
        out = "Sure! " + out
    return {**r, "output": out, "instruction": r["instruction"] if i % 2 else r["instruction"].upper()}


def rows_with_edited_copies(n: int, copies: int) -> tuple[list[dict], list[int]]:
    alpaca = SHARED_DATA / "stanford-alpaca-52k" / "alpaca_data.json"
    if not alpaca.is_file():  # the demo data will not do: it is built from templates, near-duplicates included
        pytest.skip(f"needs {alpaca}")
    rows = json.loads(alpaca.read_text())[20000:20000 + n]
    rows = [r for r in rows if len(r["output"].split()) >= 5][:n]  # a one-word answer has no light edit
    originals = list(range(0, copies * 2, 2))[:copies]
    return rows + [light_edits(rows[j], i) for i, j in enumerate(originals)], originals


@pytest.mark.realdata
@pytest.mark.slow
def test_lightly_edited_copies_are_caught_at_095_and_distinct_records_stay(random_head_scorer_dir, tmp_path):
    rows, originals = rows_with_edited_copies(160, 40)
    records = [Record(instruction=r["instruction"], input=r.get("input") or "", output=r["output"]) for r in rows]
    config = Config(scorer=random_head_scorer_dir, cache_dir=str(tmp_path), precision="fp32", compare_seeds=0,
                    language_sample=0, near_duplicates=0.95, budget=30)
    sel = select(records, config)
    n = len(rows) - len(originals)
    copy_of = {n + i: j for i, j in enumerate(originals)}
    dropped = {i: r["duplicate_of"] for i, r in enumerate(sel.annotations()) if r["reason"] == "near_duplicate"}
    # every copy is caught, each with its original (or the original with it, whichever scored higher)
    for c, j in copy_of.items():
        assert dropped.get(c) == j or dropped.get(j) == c
    assert len(dropped) == len(copy_of)  # and nothing else: distinct records stay
    assert sel.summary()["near_duplicates_dropped"] == len(copy_of)
    assert not set(dropped) & set(sel.indices.tolist()) and len(sel.indices) == 30
    off = select(records, config.replace(near_duplicates=None))
    assert "near_duplicates_dropped" not in off.summary()
    assert all(r["reason"] != "near_duplicate" for r in off.annotations())

