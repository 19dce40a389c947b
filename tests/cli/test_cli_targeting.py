"""--target, --decontaminate and --balance through the CLI, on the demo data."""

import json

import pytest

from cli_runs import annotated_rows, one_line_error, run_cli
from datapaths import REPO

DEMO = REPO / "examples" / "demo_alpaca.json"


@pytest.fixture
def demo(tmp_path):
    """The demo records with a `meta.group` field (record 7 lacks it in `missing`), target and test files."""
    rows = json.loads(DEMO.read_text())
    for i, row in enumerate(rows):
        row["meta"] = {"group": "small" if i % 5 == 0 else ["a", "b"][i % 2]}
    (tmp_path / "grouped.json").write_text(json.dumps(rows))
    del rows[7]["meta"]
    (tmp_path / "missing.json").write_text(json.dumps(rows))
    (tmp_path / "targets.jsonl").write_text("".join(json.dumps({"prompt": r["instruction"]}) + "\n" for r in rows[:4]))
    (tmp_path / "tests.jsonl").write_text("".join(json.dumps({"question": r["instruction"].upper()}) + "\n"
                                                  for r in rows[20:23]))
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "wrong.jsonl").write_text('{"id": 1}\n')
    return tmp_path


@pytest.mark.parametrize("flags, message", [
    (["--target", "{d}/targets.jsonl"], "--target needs --budget or --fraction (how many records to keep)"),
    (["--balance", "meta.group"], "--balance needs --budget or --fraction (how many records to keep)"),
    (["--budget", "9", "--balance", ":equal"], "--balance must name a field (FIELD or FIELD:equal), got ':equal'"),
    (["--budget", "9", "--target", "{d}/empty.jsonl"], "--target {d}/empty.jsonl: no examples (the file is empty)"),
    (["--budget", "9", "--decontaminate", "{d}/absent.jsonl"], "--decontaminate {d}/absent.jsonl: file not found"),
    (["--budget", "9", "--decontaminate", "{d}/wrong.jsonl"],
     '--decontaminate {d}/wrong.jsonl: line 1, record 0: no prompt or record field (the record has: "id"; expected '
     "instruction, prompt, question, text, turns, conversations or messages)"),
])
def test_mistakes_are_one_line_and_write_nothing(demo, flags, message):
    flags = [f.format(d=demo) for f in flags]
    res = run_cli("run", demo / "grouped.json", "-o", demo / "out.json", "--cache-dir", demo / "cache", *flags)
    assert one_line_error(res).endswith(message.format(d=demo))
    assert not (demo / "out.json").exists() and not (demo / "cache").exists()


def test_no_output_may_replace_an_example_file(demo):
    res = run_cli("run", demo / "grouped.json", "-o", demo / "targets.jsonl", "--cache-dir", demo / "cache",
                  "--budget", "9", "--target", demo / "targets.jsonl")
    assert "(--target); writing it would destroy the input" in one_line_error(res)
    assert (demo / "targets.jsonl").read_text().startswith('{"prompt"')


def test_a_record_without_the_balance_field_is_named(demo):
    res = run_cli("run", demo / "missing.json", "-o", demo / "out.json", "--cache-dir", demo / "cache",
                  "--budget", "9", "--balance", "meta.group")
    assert one_line_error(res).endswith(f'{demo / "missing.json"}: record 7: balance field "meta.group" is missing')
    assert not (demo / "out.json").exists() and not (demo / "cache").exists()


@pytest.mark.slow
def test_targets_decontamination_and_quotas_together(demo):
    out, ann = demo / "out.json", demo / "ann.jsonl"
    res = run_cli("run", demo / "grouped.json", "-o", out, "--annotated", ann, "--cache-dir", demo / "cache",
                  "--strategy", "qd", "--budget", "30", "--target", demo / "targets.jsonl",
                  "--decontaminate", demo / "tests.jsonl", "--balance", "meta.group", "--json",
                  "--report", demo / "report.html")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    rows = annotated_rows(ann)
    groups = [r["meta"]["group"] for r in json.loads((demo / "grouped.json").read_text())]
    kept = [r for r in rows if r["selected"]]
    assert len(kept) == 30 and {r["reason"] for r in kept} == {"target"}
    assert all(r["target"].startswith(f"{demo / 'targets.jsonl'}:") for r in kept)
    # the three test prompts (upper-cased demo instructions) keep their records out, each naming its line
    bad = [r for r in rows if r["reason"] == "contaminated"]
    assert {20, 21, 22} <= {r["index"] for r in bad} and not any(r["selected"] for r in bad)
    lines = {f"{demo / 'tests.jsonl'}:{k}" for k in (1, 2, 3)}
    assert {rows[i]["contaminated_by"] for i in (20, 21, 22)} <= lines  # the first test prompt a record matches
    d = summary["decontamination"]
    assert d["contaminated"] == len(bad) == d["files"][str(demo / "tests.jsonl")]["records"]
    # quotas: proportional to the groups' sizes, and filled
    table = {v["value"]: v for v in summary["balance"]["values"]}
    for value, v in table.items():
        assert v["selected"] == v["quota"] == sum(groups[r["index"]] == value for r in kept)
        assert abs(v["quota"] - 30 * v["records"] / len(groups)) < 1
    t = summary["target"]
    assert t["examples"] == 4 and t["coverage"] > t["coverage_random"]
    assert len(json.loads(out.read_text())) == 30
    html = (demo / "report.html").read_text()  # the report counts what was kept out, per file
    assert "Targets, decontamination, quotas" in html and f"tests.jsonl {len(bad)})" in html
