"""How a conversation's exchange scores become its score (Config.turn_aggregate), chosen on conversations
with one degraded reply (issue 34).

Validation conversations: up to 250 multi-turn records each of MT-Bench-101 and ShareGPT-zh (seeded
sample), and of each a copy with one reply degraded by a corruption kind the turn checks do not catch
(truncated, another conversation's reply, a refusal, filler appended, repeated, one token looped,
words shuffled; eval-pool wordings). Empty replies and leaked role markers are not in it: those
records are flagged and dropped whatever the aggregate (selection/turn_checks.py). Two placements of
the degraded reply: a random exchange, and the last one (the exchange a trainer usually supervises).

Per aggregate, from one scoring pass of the shipped default scorer over every distinct exchange:
- own pair: the degraded copy scores strictly below its original (ties count as misses: `min` ties
  whenever the degraded reply was not the worst);
- pool AUC: a random intact conversation above a random degraded one (what a selection sees);
- kept at half: degraded copies among the top half of originals and copies together, by score;
- turns Spearman: Spearman(score, number of exchanges) on the intact conversations (an aggregate that
  marks down long conversations for having more chances of a weak reply shows here).
The criterion is the mean of own pair and pool AUC over both placements and both sets.

    python experiments/turn_aggregate_variants.py --out experiments/results/turn_aggregate_variants.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

import numpy as np

from car_select.formats import read_dataset
from car_select.records import Record
from car_select.render import render_exchanges
from car_select.scoring.scorer import Scorer
from car_select.training.corruptions import corrupt
from car_select.training.evaluate import spearman

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
SETS = {"mt-bench-101": "mt-bench-101/mtbench101.jsonl", "sharegpt-zh": "sharegpt-zh-1k/sharegpt_zh_1K_format.jsonl"}
KINDS = ("truncate", "off_topic", "refusal", "filler_append", "repeat", "degenerate", "shuffle_words")


def _weighted_last(s: np.ndarray) -> float:
    """Half the last exchange, half the mean of all."""
    return 0.5 * s[-1] + 0.5 * s.mean()


def _softmin(s: np.ndarray, temperature: float = 1.0) -> float:
    """A smooth minimum: -T log mean exp(-s / T)."""
    return float(-temperature * (np.log(np.mean(np.exp(-(s - s.min()) / temperature)))) + s.min())


AGGREGATES = {
    "mean": lambda s: s.mean(),
    "min": lambda s: s.min(),
    "last": lambda s: s[-1],
    "last_weighted": _weighted_last,
    "mean_min": lambda s: 0.5 * s.mean() + 0.5 * s.min(),
    "softmin": _softmin,
}


def conversations(path: str, limit: int, seed: int) -> list[Record]:
    records = [r for r in read_dataset(path).records if r.is_multi_turn and all(a.strip() for _, _, a in r.exchanges())]
    rng = random.Random(seed)
    return [records[i] for i in sorted(rng.sample(range(len(records)), min(limit, len(records))))]


def degrade(records: list[Record], where: str, seed: int) -> list[tuple[Record, str] | None]:
    """Per record: (copy with one reply degraded, kind), or None where no kind applies."""
    replies = [a for r in records for _, _, a in r.exchanges()]
    out = []
    for position, record in enumerate(records):
        rng = random.Random(f"{seed}:{position}:{where}")
        turns = record.exchanges()
        at = len(turns) - 1 if where == "last" else rng.randrange(len(turns))
        user, input_, reply = turns[at]
        prompt = render_exchanges(record)[at][0]
        found = None
        for kind in rng.sample(KINDS, len(KINDS)):
            bad = corrupt(prompt, reply, kind, seed=seed, position=position, others=replies, pool="eval")
            if bad is not None and bad.strip():
                found = (kind, bad)
                break
        if found is None:
            out.append(None)
            continue
        new = [(u, a) for u, _, a in turns]
        new[at] = (user, found[1])
        history, (last_user, last_reply) = tuple(new[:-1]), new[-1]
        out.append((Record(instruction=last_user, output=last_reply, input=record.input, history=history,
                           system=record.system), found[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--per-set", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scorer", default=None, help="scorer folder (default: the shipped default)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    scorer = Scorer.load(args.scorer).to("cpu", "auto")
    texts: dict[tuple[str, str], int] = {}

    def index(record: Record) -> list[int]:
        return [texts.setdefault(pair, len(texts)) for pair in render_exchanges(record)]

    plan = {}
    for name, rel in SETS.items():
        records = conversations(os.path.join(args.data, rel), args.per_set, args.seed)
        for where in ("random", "last"):
            pairs = [(r, d) for r, d in zip(records, degrade(records, where, args.seed)) if d is not None]
            plan[(name, where)] = [(index(r), index(d), d_kind, len(r.exchanges())) for r, (d, d_kind) in pairs]
    items = list(texts)
    print(f"scoring {len(items)} distinct exchanges", file=sys.stderr)
    seg = scorer.score_pairs([p for p, _ in items], [r for _, r in items])

    results: dict = {"sets": {}, "kinds": list(KINDS), "per_set": args.per_set, "seed": args.seed}
    for (name, where), rows in plan.items():
        figures = {}
        for agg, fn in AGGREGATES.items():
            orig = np.array([fn(seg[o]) for o, _, _, _ in rows])
            bad = np.array([fn(seg[d]) for _, d, _, _ in rows])
            n = len(rows)
            together = np.concatenate([orig, bad])
            top = np.argsort(-together, kind="stable")[:n]
            auc = float((orig[:, None] > bad[None, :]).mean() + 0.5 * (orig[:, None] == bad[None, :]).mean())
            figures[agg] = {"own_pair": round(float((bad < orig).mean()), 4), "pool_auc": round(auc, 4),
                            "kept_at_half": int((top >= n).sum()),
                            "turns_spearman": round(spearman(orig, np.array([t for *_, t in rows], float)), 4)}
        results["sets"][f"{name}, {where} reply degraded"] = {"pairs": len(rows), "figures": figures}
    crit = {agg: round(float(np.mean([v["figures"][agg]["own_pair"] + v["figures"][agg]["pool_auc"]
                                      for v in results["sets"].values()]) / 2), 4) for agg in AGGREGATES}
    results["criterion"] = crit
    results["best"] = max(crit, key=crit.get)
    print(json.dumps(results, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
