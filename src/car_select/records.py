"""The normalised record every stage works on, single- or multi-turn.

A record is a conversation: zero or more earlier exchanges (`history`) followed by the final
exchange (`instruction` + optional `input` -> `output`). Alpaca pairs have an empty history.
Readers keep each record's original raw form beside it, so writers can emit it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Record:
    instruction: str
    output: str
    input: str = ""
    # Earlier (user, assistant) exchanges, oldest first; empty for single-turn data.
    history: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    system: str = ""

    @property
    def is_multi_turn(self) -> bool:
        return bool(self.history)

    def exchanges(self) -> list[tuple[str, str, str]]:
        """Every (user, input, assistant) exchange in order; only the final one carries `input`."""
        return [(u, "", a) for u, a in self.history] + [(self.instruction, self.input, self.output)]
