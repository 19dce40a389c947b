#!/usr/bin/env python
"""Targets, decontamination and quotas (issue 36) on mixed pools built from ../shared/data.

1. target: 4,000 Stanford Alpaca + 800 Code Alpaca + 800 single-turn chat exchanges (the first exchange
   of ShareGPT-zh and MT-Bench-101 conversations, LIMA records; 267/267/266). For a code target (40
   held-out Code Alpaca records) and a chat target (40 held-out chat exchanges, the same three sources)
   at --budget 300: the target's share of the selection and the target coverage (mean over target
   examples of the best cosine similarity to a selected record) per strategy, with and without
   --target, beside random subsets of 300 (mean of 5 seeds).
2. decontaminate: 3,000 Alpaca records plus 75 MT-Bench first-turn questions injected verbatim and the
   same 75 lightly edited (one seeded edit each, five kinds in turn: lowercased without final
   punctuation, whitespace doubled, a "Question: " prefix, one word dropped mid-question, two words
   swapped mid-question), each with the response of an Alpaca record outside the pool (no answers
   ship with MT-Bench; an unrelated response is the hardest case for the embedding test).
   --decontaminate mt_bench_question.jsonl at --fraction 0.5: injected items kept and marked, other
   records marked; and per cosine threshold, how many of the items the text tests miss the embedding
   test would catch and how many other records it would mark (how EMBEDDING_THRESHOLD was chosen).
3. balance: no Dolly-style set ships in ../shared/data, so a categorised 3,000-record pool is built from
   sources, the source as `category` (Alpaca 1,200, Code Alpaca 600, GPTeacher roleplay 450, GPTeacher
   toolformer 300, LIMA 300, MT-Bench-101 first turns 150); --balance category and category:equal at
   --budget 400: each category's selected count against its proportional (or equal) share.

    python benchmarks/targeting.py            # -> benchmarks/results/targeting.json
    python benchmarks/targeting.py --only decontaminate
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
BUDGET = 300
STRATEGIES = ("car", "qd", "deita")
SEED = 0


def load_json(*parts):
    return json.loads((DATA.joinpath(*parts)).read_text())


def load_jsonl(*parts):
    return [json.loads(line) for line in DATA.joinpath(*parts).read_text().splitlines() if line.strip()]


def alpaca_rows():
    return [{"instruction": r["instruction"], "input": r["input"], "output": r["output"]}
            for r in load_json("stanford-alpaca-52k", "alpaca_data.json")]


def chat_rows(rng: random.Random, per_source: tuple[int, int, int]) -> list[dict]:
    """Single-turn chat exchanges: ShareGPT-zh and MT-Bench-101 first exchanges, LIMA single-turn records."""
    zh = []
    for r in load_jsonl("sharegpt-zh-1k", "sharegpt_zh_1K_format.jsonl"):
        conv = r["conversations"]
        if len(conv) >= 2 and conv[0]["from"] == "human" and conv[1]["from"] == "gpt":
            zh.append({"instruction": conv[0]["value"], "input": "", "output": conv[1]["value"], "source": "sharegpt-zh"})
    mt = [{"instruction": r["history"][0]["user"], "input": "", "output": r["history"][0]["bot"], "source": "mt-bench-101"}
          for r in load_jsonl("mt-bench-101", "mtbench101.jsonl")]
    lima = [{"instruction": r["instruction"], "input": r.get("input") or "", "output": r["output"], "source": "lima"}
            for r in load_json("lima-1k", "lima.json") if not r.get("history")]
    out = []
    for rows, n in zip((zh, mt, lima), per_source):
        seen, picked = set(), []
        for r in rng.sample(rows, len(rows)):  # distinct instructions (MT-Bench-101 repeats its openers)
            if len(picked) == n:
                break
            if r["instruction"] not in seen:
                seen.add(r["instruction"])
                picked.append(r)
        out += picked
    return out


# A programming task by its words (an Alpaca "Write a Python function..." is one, whatever its source):
# the second measure of a code target's share, beside the source share the issue names.
CODE_WORDS = re.compile(r"\b(python|java|javascript|typescript|c\+\+|c#|sql|html|css|json|xml|regex|function|"
                        r"program|programming|script|code|algorithm|array|api|class|method|compile|debug|node\.js|"
                        r"react|bash|shell|string|integer|variable|loop)\b|代码|函数|程序|编程", re.IGNORECASE)
CODE_MARKS = re.compile(r"```|\bdef |\breturn\b|;\s*$|</\w+>|\bprint\(|=>|\{\s*$", re.MULTILINE)


def programming_task(record) -> bool:
    return bool(CODE_WORDS.search(record.instruction) or CODE_MARKS.search(record.output))


def quiet_select(records, config, **kwargs):
    from car_select.pipeline import select

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return select(records, config, **kwargs)


def as_records(rows):
    from car_select.records import Record

    return [Record(instruction=r["instruction"], input=r.get("input", ""), output=r["output"]) for r in rows]


def write_json(folder: str, name: str, rows) -> str:
    path = os.path.join(folder, name)
    Path(path).write_text(json.dumps(rows, ensure_ascii=False))
    return path


def base_config(**changes):
    from car_select.config import Config

    return Config(**{"language_sample": 0, "compare_seeds": 5, **changes})


# --------------------------------------------------------------------------------------------------


def target_pool(tmp: str):
    """The mixed pool, its sources, and the code and chat target files."""
    rng = random.Random(SEED)
    alpaca = rng.sample(alpaca_rows(), 4000)
    code_all = rng.sample(load_json("code-alpaca", "code_alpaca_2k.json"), 840)
    code, code_target = code_all[:800], code_all[800:]
    chat_all = chat_rows(rng, (281, 281, 278))
    rng.shuffle(chat_all)
    chat, chat_target = chat_all[:800], chat_all[800:]
    rows = ([{**r, "source": "alpaca"} for r in alpaca] + [{**r, "source": "code"} for r in code]
            + [{**r, "source": "chat"} for r in chat])
    sources = np.array([r["source"] for r in rows])
    records = as_records(rows)
    files = {"code": write_json(tmp, "code_target.json", [dict(instruction=r["instruction"], input=r["input"],
                                                               output=r["output"]) for r in code_target]),
             "chat": write_json(tmp, "chat_target.json", [{"instruction": r["instruction"], "input": "",
                                                           "output": r["output"]} for r in chat_target])}
    return records, sources, files


def bench_pool_factor(tmp: str) -> dict:
    """The relevant pool's size (selection.target.POOL_FACTOR x budget), at most 4 values: the target's share
    and coverage per strategy. The shipped factor is the largest that keeps every strategy at the issue's bar."""
    from car_select.selection import target as target_module

    records, sources, files = target_pool(tmp)
    shipped, out = target_module.POOL_FACTOR, {}
    try:
        for factor in (1.0, 1.5, 2.0, 3.0):
            target_module.POOL_FACTOR = factor
            for target in ("code", "chat"):
                for strategy in STRATEGIES:
                    extra = {"strategy": strategy} if strategy != "car" else {}
                    sel = quiet_select(records, base_config(budget=BUDGET, targets=(files[target],), compare_seeds=1,
                                                            **extra))
                    row = {"share": round(float((sources[sel.indices] == target).mean()), 4),
                           "coverage": sel.summary()["target"]["coverage"],
                           "mean_score": round(float(sel.scores[sel.indices].mean()), 3)}
                    out[f"{factor:g} {target} {strategy}"] = row
                    print(f"pool {factor:g} {target} {strategy} {row}", flush=True)
    finally:
        target_module.POOL_FACTOR = shipped
    return {"shipped": shipped, "runs": out}


def bench_target(tmp: str) -> dict:
    records, sources, files = target_pool(tmp)
    out: dict = {"pool": {"alpaca": 4000, "code": 800, "chat": 800}, "budget": BUDGET, "targets": 40, "runs": {}}
    for target in ("code", "chat"):
        rows_out = {}
        for strategy in STRATEGIES:
            for targeted in (False, True):
                extra = {"strategy": strategy} if strategy != "car" else {}
                cfg = base_config(budget=BUDGET, targets=(files[target],) if targeted else (), **extra)
                t = time.perf_counter()
                sel = quiet_select(records, cfg)
                seconds = time.perf_counter() - t
                share = float((sources[sel.indices] == target).mean())
                row = {"share": round(share, 4), "seconds": round(seconds, 1)}
                if target == "code":  # the source's records, or a programming task from another source
                    row["programming_share"] = round(float(np.mean([sources[i] == "code" or programming_task(records[i])
                                                                    for i in sel.indices])), 4)
                if targeted:
                    s = sel.summary()["target"]
                    row.update(coverage=s["coverage"], coverage_random=s["coverage_random"],
                               coverage_untargeted=s["coverage_untargeted"])
                row["mean_score"] = round(float(sel.scores[sel.indices].mean()), 3)
                rows_out[f"{strategy}{' +target' if targeted else ''}"] = row
                print(f"target {target:4s} {strategy:5s} {'targeted' if targeted else 'plain':8s} "
                      f"share {share:.3f} {row}", flush=True)
        # random subsets of the budget: the target's share (coverage_random above is the same draw size)
        r = np.random.default_rng(SEED)
        shares = [float((sources[r.choice(len(sources), BUDGET, replace=False)] == target).mean()) for _ in range(5)]
        rows_out["random"] = {"share": round(float(np.mean(shares)), 4)}
        if target == "code":
            rows_out["random"]["programming_share"] = round(float(np.mean(
                [sources[i] == "code" or programming_task(records[i])
                 for i in r.choice(len(sources), 5 * BUDGET, replace=False)])), 4)
        out["runs"][target] = rows_out
    return out


# --------------------------------------------------------------------------------------------------


def light_edit(text: str, kind: int, rng: random.Random) -> str:
    words = text.split()
    if kind == 0:
        return re.sub(r"[.?!]+$", "", text.strip()).lower()
    if kind == 1:
        return "  ".join(words)
    if kind == 2:
        return "Question: " + text
    mid = max(1, len(words) // 2)
    if kind == 3 and len(words) > 3:
        return " ".join(words[:mid] + words[mid + 1:])
    if len(words) > 3:
        words[mid - 1], words[mid] = words[mid], words[mid - 1]
        return " ".join(words)
    return text + " Thanks."


def bench_decontaminate(tmp: str) -> dict:
    return injection_run("mt_bench_question.jsonl", SEED + 1, lambda q: q["turns"][0])


def bench_calibrate(tmp: str) -> dict:
    """The same injection with the Vicuna questions into another Alpaca sample: where the threshold is chosen."""
    return injection_run("vicuna_test_set.jsonl", SEED + 3, lambda q: q["text"])


def injection_run(test_name: str, seed: int, question) -> dict:
    from car_select.selection import decontaminate as dc

    rng = random.Random(seed)
    alpaca_all = alpaca_rows()
    picked = rng.sample(range(len(alpaca_all)), 3150)
    pool, responses = [alpaca_all[i] for i in picked[:3000]], [alpaca_all[i]["output"] for i in picked[3000:]]
    questions = load_jsonl("eval-sets", test_name)
    chosen = rng.sample(questions, 75)
    injected = []
    for k, q in enumerate(chosen):
        injected.append({"instruction": question(q), "input": "", "output": responses[k], "kind": "verbatim"})
        injected.append({"instruction": light_edit(question(q), k % 5, rng), "input": "",
                         "output": responses[75 + k], "kind": f"edited-{k % 5}"})
    rows = pool + injected
    order = rng.sample(range(len(rows)), len(rows))
    rows = [rows[i] for i in order]
    is_injected = np.array(["kind" in r for r in rows])
    records = as_records(rows)
    test_file = str(DATA / "eval-sets" / test_name)
    out: dict = {"pool": 3000, "injected": int(is_injected.sum()), "test_file": f"eval-sets/{test_name}",
                 "threshold": dc.EMBEDDING_THRESHOLD}
    plain = quiet_select(records, base_config(fraction=0.5, compare_seeds=0))
    out["without"] = {"injected_kept": int(plain.selected_mask()[is_injected].sum())}
    t = time.perf_counter()
    sel = quiet_select(records, base_config(fraction=0.5, compare_seeds=0, decontaminate=(test_file,)))
    seconds = time.perf_counter() - t
    marked = np.array([c is not None for c in sel.aims.contaminated_by])
    kept = sel.selected_mask()
    out["with"] = {"injected_kept": int(kept[is_injected].sum()), "injected_marked": int(marked[is_injected].sum()),
                   "other_marked": int(marked[~is_injected].sum()), "selected": int(kept.sum()),
                   "by": sel.summary()["decontamination"]["by"], "seconds": round(seconds, 1)}
    missed = [rows[i] for i in np.flatnonzero(is_injected & ~marked)]
    out["with"]["injected_missed"] = [{"instruction": r["instruction"][:120], "kind": r["kind"]} for r in missed]
    # the embedding test alone, per threshold: among injected items the text tests miss, and among the rest
    sim = sel.aims.test_similarity
    text_hit = np.zeros(len(rows), dtype=bool)
    tests = dc.TestPrompts([ex for ex in _mt_prompts(test_file)])
    for i, r in enumerate(rows):
        text_hit[i] = tests.match(dc.user_texts([(r["instruction"], r.get("input", ""), r["output"])]))[0] >= 0
    sweep = {}
    for th in (0.7, 0.725, 0.75, 0.775, 0.8, 0.825, 0.85, 0.9):
        emb = sim >= th
        sweep[f"{th:g}"] = {"injected_caught_beyond_text": int((emb & is_injected & ~text_hit).sum()),
                            "injected_text_missed": int((is_injected & ~text_hit).sum()),
                            "other_marked": int((emb & ~is_injected & ~text_hit).sum())}
    out["threshold_sweep"] = sweep
    out["similarity"] = {"injected_text_missed": sorted(round(float(x), 3) for x in sim[is_injected & ~text_hit]),
                         "others_top10": sorted((round(float(x), 3) for x in sim[~is_injected]), reverse=True)[:10]}
    print(json.dumps({k: v for k, v in out.items() if k != "similarity"}, indent=1), flush=True)
    return out


def _mt_prompts(path):
    from car_select.formats.examples import read_examples

    return [ex.prompts for ex in read_examples(path, "decontaminate")]


# --------------------------------------------------------------------------------------------------


def bench_balance(tmp: str) -> dict:
    from car_select.selection.balance import largest_remainder

    rng = random.Random(SEED + 2)
    parts = {
        "alpaca": (rng.sample(alpaca_rows(), 1200)),
        "code": rng.sample(load_json("code-alpaca", "code_alpaca_2k.json"), 600),
        "roleplay": rng.sample(load_json("gpteacher", "roleplay-simple-deduped-roleplay-dataset.json"), 450),
        "toolformer": rng.sample(load_json("gpteacher", "toolformer-dedupe-only-dataset.json"), 300),
        "lima": rng.sample([r for r in load_json("lima-1k", "lima.json") if not r.get("history")], 300),
        "chat": [r for r in chat_rows(rng, (0, 150, 0))],
    }
    rows = [{"instruction": r["instruction"], "input": r.get("input") or "", "output": r["output"], "category": c}
            for c, rs in parts.items() for r in rs]
    records = as_records(rows)
    values = [r["category"] for r in rows]
    names = list(parts)
    counts = np.array([values.count(n) for n in names])
    out: dict = {"pool": dict(zip(names, counts.tolist())), "budget": 400, "runs": {}}
    for spec in ("category", "category:equal"):
        for strategy in STRATEGIES:
            extra = {"strategy": strategy} if strategy != "car" else {}
            plain = quiet_select(records, base_config(budget=400, compare_seeds=0, **extra))
            sel = quiet_select(records, base_config(budget=400, compare_seeds=0, balance=spec, **extra),
                               balance_values=values)
            got = np.array([sum(values[i] == n for i in sel.indices) for n in names])
            without = np.array([sum(values[i] == n for i in plain.indices) for n in names])
            exact = counts * 400 / counts.sum() if spec == "category" else np.full(len(names), 400 / len(names))
            share = largest_remainder(counts if spec == "category" else np.ones(len(names)), 400)
            out["runs"][f"{spec} {strategy}"] = {
                "selected": dict(zip(names, got.tolist())), "without_balance": dict(zip(names, without.tolist())),
                "exact_share": dict(zip(names, np.round(exact, 2).tolist())),
                "max_off_share": round(float(np.abs(got - exact).max()), 2),
                "max_off_quota": int(np.abs(got - share).max()),
                "without_max_off_share": round(float(np.abs(without - exact).max()), 2)}
            print(f"balance {spec:15s} {strategy:5s} {out['runs'][f'{spec} {strategy}']}", flush=True)
    return out


def tables(result: dict) -> str:
    """The docs' tables (docs/targeting.md) from a results file."""
    out = []
    t = result.get("target")
    if t:
        out += ["| target | strategy | target share | without --target | coverage | random | without --target |",
                "|---|---|---|---|---|---|---|"]
        for target, runs in t["runs"].items():
            for strategy in STRATEGIES:
                on, off = runs[f"{strategy} +target"], runs[strategy]
                extra = (f" ({on['programming_share']:.0%} programming tasks)" if "programming_share" in on else "")
                out.append(f"| {target} | {strategy} | {on['share']:.1%}{extra} | {off['share']:.1%} | {on['coverage']:.3f} | "
                           f"{on['coverage_random']:.3f} | {on['coverage_untargeted']:.3f} |")
            out.append(f"| {target} | random | {runs['random']['share']:.1%} | | | | |")
        out.append("")
    p = result.get("pool_factor")
    if p:
        out += ["| pool (x budget) | code share | chat share | code coverage | chat coverage | mean score (code, chat) |",
                "|---|---|---|---|---|---|"]
        for factor in ("1", "1.5", "2", "3"):
            rows = {k.split()[1]: [p["runs"][f"{factor} {k.split()[1]} {s}"] for s in STRATEGIES]
                    for k in p["runs"] if k.startswith(f"{factor} ")}
            share = {k: "/".join(f"{r['share']:.0%}" for r in v) for k, v in rows.items()}
            cover = {k: "/".join(f"{r['coverage']:.3f}" for r in v) for k, v in rows.items()}
            score = ", ".join(f"{np.mean([r['mean_score'] for r in rows[k]]):.1f}" for k in ("code", "chat"))
            out.append(f"| {factor} | {share['code']} | {share['chat']} | {cover['code']} | {cover['chat']} | {score} |")
        out.append("")
    for name in ("calibrate", "decontaminate"):
        d = result.get(name)
        if d:
            w = d["with"]
            out.append(f"- {d['test_file']}: {d['injected']} injected into {d['pool']:,} Alpaca records, --fraction 0.5: "
                       f"{w['injected_marked']} marked ({', '.join(f'{k} {v}' for k, v in w['by'].items())}), "
                       f"{w['injected_kept']} kept (without --decontaminate: {d['without']['injected_kept']}), "
                       f"{w['other_marked']} other records marked")
    b = result.get("balance")
    if b:
        out += ["", "| --balance | strategy | most off its share | without --balance |", "|---|---|---|---|"]
        for key, r in b["runs"].items():
            spec, strategy = key.split()
            out.append(f"| {spec} | {strategy} | {r['max_off_share']:g} | {r['without_max_off_share']:g} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=["target", "pool_factor", "calibrate", "decontaminate", "balance"])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "targeting.json"))
    parser.add_argument("--tables", action="store_true", help="print the docs' tables from --out and exit")
    args = parser.parse_args()
    if args.tables:
        print(tables(json.loads(Path(args.out).read_text())))
        return
    wanted = args.only or ["target", "pool_factor", "calibrate", "decontaminate", "balance"]
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    result = {"machine": {"cpu": cpu, "cores": os.cpu_count()}, "command": "python benchmarks/targeting.py"}
    if os.path.exists(args.out):  # --only keeps the other parts of an earlier run
        result = {**json.loads(Path(args.out).read_text()), **result}
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            t = time.perf_counter()
            result[name] = {**globals()[f"bench_{name}"](tmp), "seconds": round(time.perf_counter() - t, 1)}
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
