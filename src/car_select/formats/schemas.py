"""Record schemas: how one raw record (a dict) becomes a normalised `Record`.

Schemas (detected from the keys of the first record unless given):

- ``alpaca``: ``{"instruction", "input"?, "output", ...}``; ``input`` missing or null means "".
- ``alpaca-history`` (LLaMA-Factory): alpaca plus ``history: [[user, assistant], ...]`` and an
  optional ``system``. (The alpaca reader accepts both, so a file mixing them reads either way.)
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt"|..., "value": str}, ...]}`` (``role`` /
  ``content`` keys are accepted inside too), optional top-level ``system``.
- ``messages`` (OpenAI): ``{"messages": [{"role": ..., "content": ...}, ...]}``.
- ``turns`` (MT-Bench-101): ``{"history": [{"user": str, "bot": str}, ...], ...}``.

A conversation's final exchange is its last user message and the assistant reply that answers it;
earlier (user, assistant) pairs become `history`; consecutive messages of one role are joined with
"\\n"; a trailing user message (no reply yet) is dropped, as are assistant messages before the first
user message; system messages go to `system`. A conversation that is only an unanswered user message
keeps its record, with an empty output (valid, it just scores low: there is one record per input
record); one with no user message at all is an error.

`fields` maps canonical field names to the user's names (``{"output": "response"}``). Parsers raise
`FieldError` with a message that names the field; the readers add the file and record location.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

from ..errors import CarSelectError
from ..records import Record

SCHEMAS = ("alpaca", "alpaca-history", "sharegpt", "messages", "turns")
CANONICAL_FIELDS = ("instruction", "input", "output", "history", "system", "conversations", "messages")

USER, ASSISTANT, SYSTEM = "user", "assistant", "system"
ROLES = {
    "human": USER,
    "user": USER,
    "observation": USER,  # LLaMA-Factory tool result
    "tool": USER,  # OpenAI tool result
    "function": USER,
    "gpt": ASSISTANT,
    "assistant": ASSISTANT,
    "bot": ASSISTANT,
    "model": ASSISTANT,
    "chatgpt": ASSISTANT,
    "function_call": ASSISTANT,  # LLaMA-Factory tool call
    "system": SYSTEM,
    "developer": SYSTEM,
}


class FieldError(Exception):
    """A problem with one record; the message starts with the field (no file or record location)."""


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def parse_fields(spec: str | None) -> dict[str, str]:
    """``"instruction=prompt,output=response"`` -> ``{"instruction": "prompt", "output": "response"}``."""
    if spec is None or not spec.strip():
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        canon, sep, column = part.partition("=")
        canon, column = canon.strip(), column.strip()
        if not sep or not canon or not column:
            raise CarSelectError(f"--fields: expected NAME=COLUMN pairs separated by commas, got {part!r}")
        if canon not in CANONICAL_FIELDS:
            raise CarSelectError(
                f"--fields: unknown field {canon!r} (expected one of {', '.join(CANONICAL_FIELDS)})"
            )
        if canon in out:
            raise CarSelectError(f"--fields: field {canon!r} is mapped twice")
        out[canon] = column
    return out


def check_fields(fields: Mapping[str, str] | None) -> dict[str, str]:
    fields = dict(fields or {})
    for canon, column in fields.items():
        if canon not in CANONICAL_FIELDS:
            raise CarSelectError(
                f"--fields: unknown field {canon!r} (expected one of {', '.join(CANONICAL_FIELDS)})"
            )
        if not isinstance(column, str) or not column:
            raise CarSelectError(f"--fields: field {canon!r} must map to a non-empty column name")
    return fields


class Names:
    """The user's name for each canonical field."""

    def __init__(self, fields: Mapping[str, str] | None = None):
        fields = fields or {}
        for canon in CANONICAL_FIELDS:
            setattr(self, canon, fields.get(canon, canon))

    def all(self) -> list[str]:
        return [getattr(self, c) for c in CANONICAL_FIELDS]


def detect_schema(keys: Iterable[str], names: Names, any_has_history: bool = False) -> str | None:
    """The schema a record with these keys has, or None when no schema fits."""
    keys = set(keys)
    keys |= {name for name in names.all() if _top(name) in keys}  # a dotted --fields path counts by its top field
    if names.conversations in keys:
        return "sharegpt"
    if names.messages in keys:
        return "messages"
    if names.instruction in keys or names.output in keys:
        return "alpaca-history" if (names.history in keys or any_has_history) else "alpaca"
    if names.history in keys:
        return "turns"
    return None


# --------------------------------------------------------------------------------------------------
# field helpers


_MISSING = object()


def _lookup(row: Mapping, name: str):
    """`row[name]`, or, where no field has that literal name, the dotted path `name` through nested
    objects and lists (`instances.0.output`); _MISSING where it leads nowhere."""
    if name in row:
        return row[name]
    value = row
    for part in name.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _top(name: str) -> str:
    """The top-level field a (possibly dotted) name starts at."""
    return name.split(".", 1)[0]


def _required_str(row: Mapping, name: str) -> str:
    value = _lookup(row, name)
    if value is _MISSING:
        raise FieldError(f'missing field "{name}" (the record has: {", ".join(map(str, row)) or "no fields"}; '
                         "map others with --fields, dotted paths allowed: output=instances.0.output)")
    if not isinstance(value, str):
        raise FieldError(f'field "{name}" must be a string, got {type_name(value)}')
    return value


def _optional_str(row: Mapping, name: str) -> str:
    value = _lookup(row, name)
    value = None if value is _MISSING else value
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(f'field "{name}" must be a string, got {type_name(value)}')
    return value


def _list_field(row: Mapping, name: str, *, required: bool, json_strings: bool) -> list | None:
    if name not in row or row[name] is None:
        if required:
            raise FieldError(f'missing field "{name}"')
        return None
    value = row[name]
    if json_strings and isinstance(value, str):  # CSV cells hold nested values as JSON text
        if not value.strip():
            if required:
                raise FieldError(f'field "{name}" is empty')
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise FieldError(f'field "{name}" must be a list (JSON text in a CSV cell), got a string') from None
    if not isinstance(value, (list, tuple)):
        raise FieldError(f'field "{name}" must be a list, got {type_name(value)}')
    return list(value)


def _text(value: object, where: str) -> str:
    """Message content: a string, null (""), or a list of OpenAI content parts (text parts joined)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        parts = []
        for k, part in enumerate(value):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, Mapping):
                continue  # a non-text part (image, audio): nothing to score
            else:
                raise FieldError(f'field "{where}[{k}]" must be a string or a content part, got {type_name(part)}')
        return "\n".join(parts)
    raise FieldError(f'field "{where}" must be a string, got {type_name(value)}')


def _pairs_to_record(
    pairs: list[tuple[str, str]], system: str, where: str
) -> Record:
    if not pairs:
        raise FieldError(f'field "{where}" has no user message with an assistant reply')
    (instruction, output) = pairs[-1]
    return Record(instruction=instruction, output=output, history=tuple(pairs[:-1]), system=system)


def conversation_to_record(messages: list[tuple[str, str]], system: str, where: str) -> Record:
    """(role, text) messages, roles already normalised -> Record (see the module docstring)."""
    system_parts = [system] if system else []
    turns: list[list[str]] = []
    for role, text in messages:
        if role == SYSTEM:
            system_parts.append(text)
        elif turns and turns[-1][0] == role:
            turns[-1][1] += "\n" + text
        else:
            turns.append([role, text])
    start = 0
    while start < len(turns) and turns[start][0] == ASSISTANT:
        start += 1
    turns = turns[start:]
    if not turns:
        raise FieldError(f'field "{where}" has no user message')
    if len(turns) == 1:
        # A lone user message that was never answered: keep the record (one per input record) with
        # an empty output, which is valid and simply scores low.
        return Record(instruction=turns[0][1], output="", system="\n".join(system_parts))
    if turns[-1][0] == USER:
        turns.pop()
    pairs = [(turns[i][1], turns[i + 1][1]) for i in range(0, len(turns), 2)]
    return _pairs_to_record(pairs, "\n".join(system_parts), where)


# --------------------------------------------------------------------------------------------------
# parsers: raw row -> Record


def parse_alpaca(row: Mapping, names: Names, json_strings: bool = False) -> Record:
    instruction = _required_str(row, names.instruction)
    output = _required_str(row, names.output)
    input_ = _optional_str(row, names.input)
    system = _optional_str(row, names.system)
    raw_history = _list_field(row, names.history, required=False, json_strings=json_strings)
    history: list[tuple[str, str]] = []
    for k, item in enumerate(raw_history or ()):
        where = f"{names.history}[{k}]"
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise FieldError(f'field "{where}" must be a [user, assistant] pair, got a list of {len(item)}')
            user, assistant = item
            if not isinstance(user, str):
                raise FieldError(f'field "{where}[0]" must be a string, got {type_name(user)}')
            if not isinstance(assistant, str):
                raise FieldError(f'field "{where}[1]" must be a string, got {type_name(assistant)}')
        elif isinstance(item, Mapping):
            user, assistant = _turn(item, where)
        else:
            raise FieldError(f'field "{where}" must be a [user, assistant] pair, got {type_name(item)}')
        history.append((user, assistant))
    return Record(instruction=instruction, output=output, input=input_, history=tuple(history), system=system)


def _turn(item: Mapping, where: str) -> tuple[str, str]:
    if "user" not in item:
        raise FieldError(f'missing field "{where}.user"')
    bot_key = next((k for k in ("bot", "assistant") if k in item), None)
    if bot_key is None:
        raise FieldError(f'missing field "{where}.bot"')
    user, bot = item["user"], item[bot_key]
    if not isinstance(user, str):
        raise FieldError(f'field "{where}.user" must be a string, got {type_name(user)}')
    if not isinstance(bot, str):
        raise FieldError(f'field "{where}.{bot_key}" must be a string, got {type_name(bot)}')
    return user, bot


def parse_turns(row: Mapping, names: Names, json_strings: bool = False) -> Record:
    raw = _list_field(row, names.history, required=True, json_strings=json_strings)
    if not raw:
        raise FieldError(f'field "{names.history}" is empty')
    pairs = []
    for k, item in enumerate(raw):
        where = f"{names.history}[{k}]"
        if not isinstance(item, Mapping):
            raise FieldError(f'field "{where}" must be an object with "user" and "bot", got {type_name(item)}')
        pairs.append(_turn(item, where))
    return _pairs_to_record(pairs, _optional_str(row, names.system), names.history)


def _parse_messages(row: Mapping, field: str, system_field: str, prefer_role: bool, json_strings: bool) -> Record:
    raw = _list_field(row, field, required=True, json_strings=json_strings)
    if not raw:
        raise FieldError(f'field "{field}" is empty')
    role_keys = ("role", "from") if prefer_role else ("from", "role")
    text_keys = ("content", "value") if prefer_role else ("value", "content")
    messages = []
    for k, msg in enumerate(raw):
        where = f"{field}[{k}]"
        if not isinstance(msg, Mapping):
            raise FieldError(f'field "{where}" must be an object, got {type_name(msg)}')
        role_key = next((key for key in role_keys if key in msg), None)
        if role_key is None:
            raise FieldError(f'missing field "{where}.{role_keys[0]}"')
        role = msg[role_key]
        if not isinstance(role, str):
            raise FieldError(f'field "{where}.{role_key}" must be a string, got {type_name(role)}')
        norm = ROLES.get(role.strip().lower())
        if norm is None:
            raise FieldError(f'field "{where}.{role_key}" has unknown role {role!r}')
        text_key = next((key for key in text_keys if key in msg), None)
        if text_key is None:
            if norm == ASSISTANT and ("tool_calls" in msg or "function_call" in msg):
                text = ""
            else:
                raise FieldError(f'missing field "{where}.{text_keys[0]}"')
        else:
            text = _text(msg[text_key], f"{where}.{text_key}")
        messages.append((norm, text))
    return conversation_to_record(messages, _optional_str(row, system_field), field)


def parse_sharegpt(row: Mapping, names: Names, json_strings: bool = False) -> Record:
    return _parse_messages(row, names.conversations, names.system, False, json_strings)


def parse_openai_messages(row: Mapping, names: Names, json_strings: bool = False) -> Record:
    return _parse_messages(row, names.messages, names.system, True, json_strings)


PARSERS: dict[str, Callable[..., Record]] = {
    "alpaca": parse_alpaca,
    "alpaca-history": parse_alpaca,
    "sharegpt": parse_sharegpt,
    "messages": parse_openai_messages,
    "turns": parse_turns,
}


def required_columns(schema: str, names: Names) -> list[str]:
    return {
        "alpaca": [names.instruction, names.output],
        "alpaca-history": [names.instruction, names.output],
        "sharegpt": [names.conversations],
        "messages": [names.messages],
        "turns": [names.history],
    }[schema]
