"""Which embedding space should --near-duplicates compare in? Lightly edited copies of Alpaca records
(spacing, case, punctuation, a "Sure!" prefix; short answers included) against the distinct records:
the cosine of each copy to its original, and each original's highest cosine to any other distinct
record, in the PCA-reduced space the clustering uses (centered) and in the raw 384-d embedding.

    python experiments/near_duplicate_space.py   # -> experiments/results/near_duplicate_space.json
"""

import json
import sys
from pathlib import Path

import numpy as np

from car_select.config import Config
from car_select.records import Record
from car_select.stages import ClusterEstimator, Featurize

HERE = Path(__file__).resolve().parent
ALPACA = HERE.parent.parent / "shared" / "data" / "stanford-alpaca-52k" / "alpaca_data.json"
EDITS = ("spacing", "lowercase", "punctuation", "sure_prefix")


def edited(row: dict, edit: str) -> dict:
    out = row["output"]
    if edit == "spacing":
        out = "  " + out.replace(" ", "  ", 3) + " "
    elif edit == "lowercase":
        out = out.lower()
    elif edit == "punctuation":
        out = out.replace(".", "").replace(",", "") + "!"
    else:
        out = "Sure! " + out
    return {**row, "output": out}


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def main() -> int:
    rows = json.loads(ALPACA.read_text())[30000:32000]
    originals = list(range(0, 800, 2))  # 400 copies, 100 of each edit, short answers included
    copies = [edited(rows[j], EDITS[i % 4]) for i, j in enumerate(originals)]
    allrows = rows + copies
    records = [Record(r["instruction"], r["output"], r.get("input") or "") for r in allrows]
    config = Config(compare_seeds=0, language_sample=0)
    feats = Featurize(config)(records)
    est = ClusterEstimator(config)
    est.fit(feats.embeddings, len(records))
    _, reduced = est.predict(feats.embeddings)
    out = {"records": len(rows), "copies": len(copies)}
    for space, x in (("pca_reduced", reduced), ("raw_embedding", feats.embeddings)):
        u = unit(np.asarray(x, dtype=np.float64))
        n = len(rows)
        copy_sim = np.array([u[n + i] @ u[j] for i, j in enumerate(originals)])
        sims = u[:n] @ u[:n].T
        np.fill_diagonal(sims, -1)
        nearest_other = sims.max(1)
        by_edit = {e: {"min": round(float(copy_sim[i::4].min()), 4), "caught_at_0.95": int((copy_sim[i::4] >= 0.95).sum())}
                   for i, e in enumerate(EDITS)}
        out[space] = {
            "copy_to_original": {"min": round(float(copy_sim.min()), 4), "median": round(float(np.median(copy_sim)), 4),
                                 "caught_at": {t: int((copy_sim >= t).sum()) for t in (0.9, 0.95, 0.97)}},
            "by_edit": by_edit,
            "distinct_pairs_at_or_above": {t: int((np.triu(sims, 1) >= t).sum()) for t in (0.9, 0.95, 0.97)},
            "distinct_nearest_other_p99": round(float(np.percentile(nearest_other, 99)), 4),
        }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "near_duplicate_space.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
