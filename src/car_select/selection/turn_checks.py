"""Broken turns: exchanges whose reply no trainer would keep, whatever the scorer says of the others.

A conversation's score aggregates its exchanges (Config.turn_aggregate), so one empty reply among six
good ones moves a mean score little: 19 of 200 conversations with their last reply emptied were kept at
`--fraction 0.5` (issue 34). A reply is broken when it is empty or whitespace, or when a chat
transcript's role marker ("Human:", "User:", "Assistant:", "### Response", "<|im_start|>", "[INST]")
stands at one of its line starts: the model ran on into, or copied, another turn.

A marker is not counted where the request itself asks for dialogue (it names the role or a
conversation, script or interview): "Write a dialogue between a user and an assistant" is answered
with "User: ..." lines on purpose.

Pure: records in, per-record flags out. The run drops flagged records before the strategy chooses,
with their own reason ("broken_turn"); Config.keep_broken_turns keeps them eligible, flagged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..records import Record

# At a line start: a speaker's name and a colon, or a markdown heading of a prompt template.
_SPEAKER = re.compile(r"^[ \t>*_]*(human|user|assistant|ai|bot|gpt|chatgpt|system|prompter)[ \t]*:",
                      re.IGNORECASE | re.MULTILINE)
_HEADING = re.compile(r"^[ \t]*#{2,}[ \t]*(instruction|response|input|human|user|assistant|system)\b",
                      re.IGNORECASE | re.MULTILINE)
# Chat-template tokens, anywhere: no reply has them on purpose.
_TEMPLATE_TOKEN = re.compile(r"<\|(?:im_start|im_end|user|assistant|system|endoftext|eot_id)\|>|\[/?INST\]")
# A request that asks for dialogue may be answered with speaker lines.
_DIALOGUE_REQUEST = re.compile(r"dialog|conversation|script|transcript|interview|chat|role.?play|screenplay|"
                               r"exchange between|talk between|对话|聊天", re.IGNORECASE)


def role_marker(request: str, reply: str) -> str | None:
    """The role marker leaked into `reply` (as it is written there), or None."""
    token = _TEMPLATE_TOKEN.search(reply)
    if token:
        return token.group()
    if _DIALOGUE_REQUEST.search(request):
        return None
    for pattern in (_SPEAKER, _HEADING):
        for match in pattern.finditer(reply):
            if not re.search(rf"\b{re.escape(match.group(1))}\b", request, re.IGNORECASE):
                return match.group().strip(" \t>*_")
    return None


def exchange_problem(request: str, reply: str) -> str | None:
    """Why one exchange's reply is broken ("empty reply", "role marker 'Human:' at a line start"), or None."""
    if not reply.strip():
        return "empty reply"
    marker = role_marker(request, reply)
    if marker is not None:
        return f"role marker {marker!r} in the reply"
    return None


def turn_flags(record: Record) -> list[dict]:
    """One {"exchange": i, "why": ...} per broken exchange of the record (i counts from 0 in the
    conversation's order; a single-turn record's one exchange is 0); [] for an intact record."""
    flags = []
    for i, (user, input_, reply) in enumerate(record.exchanges()):
        why = exchange_problem(f"{user}\n{input_}", reply)
        if why is not None:
            flags.append({"exchange": i, "why": why})
    return flags


def broken_turn_flags(records: Sequence[Record]) -> list[list[dict]]:
    """turn_flags of each record."""
    return [turn_flags(r) for r in records]
