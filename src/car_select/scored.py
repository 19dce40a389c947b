"""What a run scored: how its records became the scorer's texts, and the scorer's token window.

A record becomes one text per exchange (render.py: a user turn and the reply to it, in the template
the scorer was trained on); a conversation's score is its exchanges' scores aggregated by
`Config.turn_aggregate`, and a system prompt is not part of any text. The scorer reads at most its
window of tokens per text (256 for the shipped scorers): a longer text keeps its first tokens and, for
a scorer trained with a tail, its last ones, so however long a record is, only that many of its tokens
were scored. The summary, `--json`, the manifest and the report say all of this with the counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .config import Config
from .records import Record
from .wording import count, plural


def scorer_window(config: Config, scorer=None) -> dict | None:
    """{"tokens": N, "head": first tokens kept, "tail": last tokens kept} of the car-select scorer that
    scores the texts: the loaded `scorer`'s, else what its config.json says (no model is loaded); None
    where it is not known (a reward model, a COMET checkpoint that is not loaded)."""
    if scorer is not None:
        head = getattr(scorer, "head_config", None)
        if head is None or not isinstance(getattr(scorer, "max_length", None), int):
            return None
        return _window(scorer.max_length, getattr(head, "tail_tokens", 0) or 0)
    if isinstance(config.scorer, str) and config.scorer.startswith("hf-reward:"):
        return None
    from .scoring.scorer import scorer_path

    try:
        saved = json.loads((Path(scorer_path(config.scorer)) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("head"), dict):
        return None
    return _window(int(saved.get("max_length", 256)), int(saved["head"].get("tail_tokens") or 0))


def _window(tokens: int, tail: int) -> dict:
    tail = min(max(tail, 0), tokens)
    return {"tokens": tokens, "head": tokens - tail, "tail": tail}


def describe(records: Sequence[Record], config: Config, window: dict | None, texts_cut: int | None,
             schema: str | None = None) -> dict:
    """The summary's "scored" block for the distinct `records` of a run. `texts_cut`: texts that filled
    the window (so were cut, unless exactly that long), None where not counted."""
    multi = sum(1 for r in records if r.history)
    return {
        "schema": schema,  # what formats/ detected (api.run knows it; select() on records does not)
        "records": len(records),
        "texts": sum(len(r.history) + 1 for r in records),
        "text_per": "exchange",
        "multi_turn_records": multi,
        "turn_aggregate": config.turn_aggregate if multi else None,
        "system_prompts_not_scored": sum(1 for r in records if r.system.strip()),
        "score_field": config.score_field,
        "window": window,
        "texts_cut": texts_cut,
    }


def describe_lines(scored: dict) -> list[tuple[str, str]]:
    """(label, sentence) pairs saying what was scored: the text summary's and the report's lines."""
    texts, records = scored["texts"], scored["records"]
    schema = f" (schema {scored['schema']})" if scored.get("schema") else ""
    if scored.get("multi_turn_records"):
        how = (f"{count(texts, 'text')} from {count(records, 'distinct record')}{schema}: one per exchange (a user "
               f"turn and its reply), a conversation's score its exchanges' aggregated by turn_aggregate "
               f"\"{scored['turn_aggregate']}\" ({count(scored['multi_turn_records'], 'record')} with earlier turns)")
    else:
        how = f"{count(texts, 'text')}, one per distinct record{schema}"
    if scored.get("system_prompts_not_scored"):
        n = scored["system_prompts_not_scored"]
        how += f"; {count(n, 'system prompt')} not scored (no text includes {plural(n, 'it', 'them')})"
    if scored.get("score_field"):
        how = f'scores from the field "{scored["score_field"]}" (no scorer); embedded: ' + how
    lines = [("scored", how)]
    window = scored.get("window")
    if window and not scored.get("score_field"):
        keeps = (f"a longer text keeps its first {window['head']:,} and last {window['tail']:,}" if window["tail"]
                 else f"a longer text keeps its first {window['tokens']:,}")
        cut = scored.get("texts_cut")
        tail = ("" if cut is None else
                f": {count(cut, 'text')} filled it, only {window['tokens']:,} tokens of each scored" if cut else
                ": no text was cut")
        lines.append(("window", f"{window['tokens']:,} tokens per text ({keeps}){tail}"))
    return lines
