"""`car-select run` on conversations with broken turns (issue 34): dropped with their own reason and
flags, or kept eligible with --keep-broken-turns."""

import json

from cli_runs import annotated_rows, run_cli


def _conversations(path, broken):
    rows = []
    for i in range(30):
        last = broken.get(i, f"Sure: step {i} is to check the {['oil', 'tyres', 'lights'][i % 3]} before a long drive.")
        rows.append({"conversations": [
            {"from": "human", "value": f"How do I get my car ready for a trip ({i})?"},
            {"from": "gpt", "value": "Check the oil, the tyres and the lights, and plan your stops."},
            {"from": "human", "value": "What should I do first?"},
            {"from": "gpt", "value": last}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_broken_conversations_are_dropped_flagged_and_counted(tmp_path):
    src = tmp_path / "chats.jsonl"
    _conversations(src, {4: "", 9: "Check the oil first.\n\nHuman: Uh, and then?"})
    ann = tmp_path / "annotated.jsonl"
    res = run_cli("run", src, "-o", tmp_path / "out.jsonl", "--annotated", ann, "--fraction", 0.5,
                  "--cache-dir", tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    assert "broken turns        2 dropped" in res.stdout
    assert "(record 4)" in res.stderr  # the empty-response warning names the record
    rows = annotated_rows(ann)
    assert rows[4]["reason"] == rows[9]["reason"] == "broken_turn"
    assert rows[4]["flags"] == [{"exchange": 1, "why": "empty reply"}]
    assert rows[9]["flags"] == [{"exchange": 1, "why": "role marker 'Human:' in the reply"}]
    assert sum(r["selected"] for r in rows) == 15 and not rows[4]["selected"] and not rows[9]["selected"]

    kept = run_cli("run", src, "-o", tmp_path / "kept.jsonl", "--annotated", tmp_path / "kept.jsonl.ann",
                   "--fraction", 0.5, "--keep-broken-turns", "--json", "--cache-dir", tmp_path / "cache")
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["broken_turns_kept_eligible"] == 2
    rows = annotated_rows(tmp_path / "kept.jsonl.ann")
    assert rows[4]["flags"] and rows[4]["reason"] != "broken_turn"
