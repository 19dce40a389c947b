"""What the judge is asked: the shipped rubrics, a user's prompt file, and how a record fills one.

A prompt is a template with the placeholders {instruction}, {input} and {response}; nothing else in
it is touched, so a prompt may hold JSON or code braces. Each exchange of a record is rated as the
scorer sees it (render.render_exchanges: every exchange on its own, earlier turns not repeated), and
a conversation's rating is the mean of its exchanges' (the scorer's default turn aggregate).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import CarSelectError

PLACEHOLDERS = ("instruction", "input", "response")
_PLACEHOLDER = re.compile(r"\{(instruction|input|response)\}")

# AlpaGasus (Chen et al., 2024), the accuracy rubric its ratings of Alpaca used, with the score asked
# for on the first line so a short reply suffices.
ACCURACY = """\
We would like to request your feedback on the performance of AI assistant in response to the instruction \
and the given input displayed following.

Instruction: {instruction}
Input: {input}
Response: {response}

Please rate according to the accuracy of the response to the instruction and the input. Each assistant \
receives a score on a scale of 0 to 5, where a higher score indicates higher level of the accuracy. Please \
first output a single line containing the value indicating the scores. In the subsequent line, please \
provide a brief explanation of your evaluation, avoiding any potential bias."""

HELPFULNESS = """\
We would like to request your feedback on the performance of AI assistant in response to the instruction \
and the given input displayed following.

Instruction: {instruction}
Input: {input}
Response: {response}

Please rate according to the helpfulness of the response: how well it does what the instruction asks, \
how complete, correct, clear and useful it is to the person asking. Each assistant receives a score on a \
scale of 0 to 5, where a higher score indicates a more helpful response. Please first output a single line \
containing the value indicating the score. In the subsequent line, please provide a brief explanation of \
your evaluation, avoiding any potential bias."""

SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."


@dataclass(frozen=True)
class Rubric:
    name: str
    template: str
    scale: tuple[float, float] | None  # (lowest, highest) a reply may say; None: any number
    system: str = SYSTEM

    def fill(self, instruction: str, input: str, response: str) -> str:
        values = {"instruction": instruction, "input": input or "(none)", "response": response}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)


RUBRICS = {"accuracy": Rubric("accuracy", ACCURACY, (0.0, 5.0)),
           "helpfulness": Rubric("helpfulness", HELPFULNESS, (0.0, 5.0))}


def parse_scale(text: str | None, flag: str = "--scale") -> tuple[float, float] | None:
    """'LOW,HIGH' -> (low, high); None stays None."""
    if text is None:
        return None
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise CarSelectError(f"{flag} must be two numbers LOW,HIGH, got {text!r}") from None
    if not low < high:
        raise CarSelectError(f"{flag}: LOW must be below HIGH, got {text!r}")
    return low, high


def load_prompt(path: str | os.PathLike, scale: tuple[float, float] | None = None, system: str = SYSTEM) -> Rubric:
    """A user's prompt file as a Rubric; a one-line error for a file that cannot be a prompt."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            template = f.read()
    except FileNotFoundError:
        raise CarSelectError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CarSelectError(f"{path}: is a directory, not a prompt file") from None
    except UnicodeDecodeError as e:
        raise CarSelectError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise CarSelectError(f"{path}: cannot read: {e.strerror or e}") from None
    found = set(_PLACEHOLDER.findall(template))
    if "response" not in found:
        raise CarSelectError(f"{path}: the prompt has no {{response}} placeholder (it may use {{instruction}}, "
                             "{input} and {response})")
    if "instruction" not in found:
        raise CarSelectError(f"{path}: the prompt has no {{instruction}} placeholder (it may use {{instruction}}, "
                             "{input} and {response})")
    return Rubric(os.path.basename(path), template, scale, system)


def rubric_for(name: str | None, prompt_file: str | None, scale: tuple[float, float] | None = None) -> Rubric:
    """The shipped rubric `name`, or the prompt file (its scale: `scale`, else any number)."""
    if prompt_file is not None:
        return load_prompt(prompt_file, scale)
    if name not in RUBRICS:
        raise CarSelectError(f"--rubric must be one of {', '.join(RUBRICS)}, got {name!r}")
    rubric = RUBRICS[name]
    return rubric if scale is None else Rubric(rubric.name, rubric.template, scale, rubric.system)
