"""Record -> text, in the template the CaR scorer was trained on.

`Instruction: {instruction} Input: {input} Response: {output}`, leaving ` Input: ...` out when the
input is empty: the expert-revised training data is written that way (the official inference script
always adds it, a train/inference mismatch we do not copy).

Multi-turn conversations become one text per exchange. Each exchange is scored on its own, in the
same template, because the scorer was trained on single exchanges and its window (256 tokens) would
otherwise be spent on context instead of the answer being judged; the conversation's score is the
aggregate of its exchanges (Config.turn_aggregate: by default half the mean and half the worst exchange) and its embedding is the
token-weighted mean of the exchanges' mean-pooled embeddings, i.e. the mean over all its tokens.
"""

from __future__ import annotations

from .records import Record


RESPONSE_MARK = " Response: "


def render_prompt(instruction: str, input: str = "") -> str:
    """The instruction part of the template (what the triplet scorer uses as its anchor)."""
    if input and input.strip():
        return f"Instruction: {instruction} Input: {input}"
    return f"Instruction: {instruction}"


def render_pair(instruction: str, input: str, output: str) -> str:
    return f"{render_prompt(instruction, input)}{RESPONSE_MARK}{output}"


def render_exchanges(record: Record) -> list[tuple[str, str]]:
    """(prompt, response) per exchange (exactly one for single-turn records)."""
    return [(render_prompt(u, i), a) for u, i, a in record.exchanges()]


def render_segments(record: Record) -> list[str]:
    """One scored text per exchange."""
    return [f"{p}{RESPONSE_MARK}{r}" for p, r in render_exchanges(record)]


def render_record(record: Record) -> str:
    """The whole record as one text; for single-turn records this is the scored text itself."""
    return "\n".join(render_segments(record))
