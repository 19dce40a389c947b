"""Readers for scorer training/evaluation data: preference pairs of (prompt, better, worse).

Three layouts are accepted, detected from the header or extension:
- the expert-revised score CSV (`src,score`): consecutive rows with scores 0 and 1 form a pair
  (1 = the expert-revised answer, the better one), `src` = "Instruction: ... Response: ...";
- the pairs CSV (`src,pos,neg`): `src` = "Instruction: ...", `pos`/`neg` = "Response: ...";
- JSONL preference pairs: one object per line with `prompt`, `chosen`, `rejected` (and optional `input`).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

from ..errors import CarSelectError
from ..render import RESPONSE_MARK, render_prompt


@dataclass(frozen=True)
class PreferencePair:
    prompt: str  # the rendered instruction part: "Instruction: ... [Input: ...]"
    chosen: str  # the better (expert-revised) response
    rejected: str  # the worse (original) response
    # The experts sometimes revised the instruction too (about a third of the CaR pairs): the
    # original's own prompt then differs from the revised one.
    rejected_prompt: str | None = None

    @property
    def chosen_text(self) -> str:
        """The full scored text, in the template of render.render_pair."""
        return f"{self.prompt}{RESPONSE_MARK}{self.chosen}"

    @property
    def rejected_text(self) -> str:
        return f"{self.rejected_prompt or self.prompt}{RESPONSE_MARK}{self.rejected}"


def _split(path: str, line: int, text: str) -> tuple[str, str]:
    """"Instruction: ... Response: ..." -> (prompt, response), at the first response mark."""
    cut = text.find(RESPONSE_MARK)
    if cut < 0:
        raise CarSelectError(f'{path}: line {line}: field "src" has no " Response: " part')
    return text[:cut], text[cut + len(RESPONSE_MARK):]


def _split_pair(path: str, line_a: int, a: str, line_b: int, b: str) -> PreferencePair:
    """(better text, worse text) -> PreferencePair; a shared prompt is found by common prefix so an
    instruction that itself contains " Response: " still splits where the texts diverge."""
    common = os.path.commonprefix([a, b])
    cut = common.rfind(RESPONSE_MARK)
    if cut >= 0:
        return PreferencePair(a[:cut], a[cut + len(RESPONSE_MARK):], b[cut + len(RESPONSE_MARK):])
    (pa, ra), (pb, rb) = _split(path, line_a, a), _split(path, line_b, b)
    return PreferencePair(pa, ra, rb, rejected_prompt=None if pa == pb else pb)


def _open_text(path: str):
    if not os.path.isfile(path):
        raise CarSelectError(f"{path}: no such file")
    return open(path, newline="", encoding="utf-8")


def _read_csv_rows(path: str) -> tuple[list[str], list[tuple[int, dict]]]:
    try:
        with _open_text(path) as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise CarSelectError(f"{path}: line {reader.line_num}: expected {len(header)} columns ({','.join(header)})")
                rows.append((reader.line_num, row))
    except UnicodeDecodeError as e:
        raise CarSelectError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise CarSelectError(f"{path}: malformed CSV: {e}") from None
    return header, rows


def read_score_csv(path: str) -> list[PreferencePair]:
    header, rows = _read_csv_rows(path)
    pairs = []
    if len(rows) % 2:
        raise CarSelectError(f"{path}: line {rows[-1][0]}: odd number of rows; rows must come in (0, 1) pairs")
    for k in range(0, len(rows), 2):
        (line_a, a), (line_b, b) = rows[k], rows[k + 1]
        scores = []
        for line, row in ((line_a, a), (line_b, b)):
            try:
                scores.append(float(row["score"]))
            except ValueError:
                raise CarSelectError(f'{path}: line {line}: field "score" must be a number, got {row["score"]!r}') from None
        if sorted(scores) != [0.0, 1.0]:
            raise CarSelectError(
                f'{path}: line {line_b}: field "score": a pair needs one row scored 0 and one scored 1, got {scores}'
            )
        better, worse = ((line_b, b), (line_a, a)) if scores[1] > scores[0] else ((line_a, a), (line_b, b))
        pairs.append(_split_pair(path, better[0], better[1]["src"], worse[0], worse[1]["src"]))
    return pairs


def read_triplet_csv(path: str) -> list[PreferencePair]:
    _, rows = _read_csv_rows(path)
    pairs = []
    for line, row in rows:
        for name in ("pos", "neg"):
            if not row[name].startswith("Response:"):
                raise CarSelectError(f'{path}: line {line}: field "{name}" must start with "Response:"')
        prompt = row["src"].strip()
        pairs.append(PreferencePair(prompt, row["pos"][len("Response:"):].lstrip(), row["neg"][len("Response:"):].lstrip()))
    return pairs


def read_preference_jsonl(path: str) -> list[PreferencePair]:
    pairs = []
    try:
        with _open_text(path) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CarSelectError(f"{path}: line {line_no}: malformed JSON: {e.msg}") from None
                if not isinstance(obj, dict):
                    raise CarSelectError(f"{path}: line {line_no}: expected a JSON object")
                for name in ("prompt", "chosen", "rejected"):
                    if name not in obj:
                        raise CarSelectError(f'{path}: line {line_no}: missing field "{name}"')
                    if not isinstance(obj[name], str):
                        raise CarSelectError(
                            f'{path}: line {line_no}: field "{name}" must be a string, got {type(obj[name]).__name__}'
                        )
                prompt = render_prompt(obj["prompt"], obj.get("input") or "")
                pairs.append(PreferencePair(prompt, obj["chosen"], obj["rejected"]))
    except UnicodeDecodeError as e:
        raise CarSelectError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return pairs


def read_pairs(path: str | os.PathLike) -> list[PreferencePair]:
    """Preference pairs from any supported layout; a clear one-line error for anything else."""
    path = str(path)
    if path.endswith((".jsonl", ".json")):
        pairs = read_preference_jsonl(path)
    else:
        with _open_text(path) as f:
            first = f.readline().strip().lstrip("\ufeff")
        columns = [c.strip() for c in first.split(",")]
        if columns == ["src", "score"]:
            pairs = read_score_csv(path)
        elif columns == ["src", "pos", "neg"]:
            pairs = read_triplet_csv(path)
        else:
            raise CarSelectError(
                f"{path}: line 1: unknown header {first[:60]!r}; expected 'src,score', 'src,pos,neg' or a .jsonl "
                "file of {prompt, chosen, rejected}"
            )
    if not pairs:
        raise CarSelectError(f"{path}: no pairs found")
    return pairs
