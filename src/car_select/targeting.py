"""What a selection is for (issue 36), on the driver of either executor: target examples
(`Config.targets`), evaluation prompts to keep out (`Config.decontaminate`) and quotas per value of a
record field (`Config.balance`).

`Aims.read` reads the example files before any work (a bad file is a one-line error); `Aims.embed`
renders and embeds the examples like records, with the run's Featurize stage, and puts them in the
run's PCA space; `Aims.rule_inputs` gives `selection.apply.apply_rule` its `exclude`, `targets` and
`groups`; `Aims.summary` says how the selection covers the targets (beside random subsets and the same
strategy without targets), what was kept out per file, and the quota per value. The rules themselves
are pure, in selection/target.py, decontaminate.py and balance.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .config import Config
from .errors import CarSelectError
from .formats.examples import Example, read_examples
from .records import Record


def where_label(path: str, where: str) -> str:
    """"eval.jsonl:12" for a line, "eval.parquet:record 12" otherwise."""
    return f"{path}:{where.removeprefix('line ')}" if where.startswith("line ") else f"{path}:{where}"


@dataclass
class Aims:
    config: Config
    targets: list[tuple[str, Example]] = field(default_factory=list)  # (file, example)
    tests: list[tuple[str, Example]] = field(default_factory=list)
    values: list[str] | None = None  # balance: per input record
    target_reduced: np.ndarray | None = None
    test_embeddings: np.ndarray | None = None  # the test prompts' encoder embeddings (not reduced)
    test_owner: np.ndarray | None = None  # per row of test_embeddings: its test example
    stage: object = None  # the run's Featurize stage
    progress: object = None

    @classmethod
    def read(cls, config: Config, n_records: int, balance_values: Sequence[str] | None = None) -> "Aims | None":
        if not (config.targets or config.decontaminate or config.balance):
            return None
        aims = cls(config)
        for path in config.targets:
            aims.targets += [(path, ex) for ex in read_examples(path, "targets")]
        for path in config.decontaminate:
            aims.tests += [(path, ex) for ex in read_examples(path, "decontaminate")]
        if config.balance:
            if balance_values is None:
                raise CarSelectError(f"balance {config.balance!r} needs the dataset's rows: use api.run, or pass "
                                     "balance_values= (car_select.given_scores.read_value_field)")
            if len(balance_values) != n_records:
                raise CarSelectError(f"balance_values: expected one value per record ({n_records}), got "
                                     f"{len(balance_values)}")
            aims.values = [str(v) for v in balance_values]
        return aims

    @property
    def balance_field(self) -> tuple[str, str] | None:
        from .selection.balance import parse_balance

        return parse_balance(self.config.balance) if self.config.balance else None

    def embed(self, stage, estimator, progress) -> None:
        """The examples' rows in the run's PCA space: rendered and embedded as records are (`stage`, the
        run's Featurize, in this process), reduced by the fitted `estimator`."""
        from .executors.local import LocalExecutor

        self.stage, self.progress = stage, progress
        # a test example's prompts (MT-Bench's two turns) are embedded one by one: each alone may be copied
        prompts = [(k, p) for k, (_, ex) in enumerate(self.tests) for p in ex.prompts]
        self.test_owner = np.array([k for k, _ in prompts], dtype=np.int64)
        records = [ex.record for _, ex in self.targets] + [Record(instruction=p, output="") for _, p in prompts]
        if not records:
            return
        feats = LocalExecutor().featurize(stage, records, progress)
        embeddings = np.asarray(feats.embeddings, dtype=np.float32)
        if self.targets:
            self.target_reduced = estimator.predict(embeddings[:len(self.targets)])[1]
        if self.tests:
            self.test_embeddings = embeddings[len(self.targets):]

    def contamination(self, records: Sequence[Record]):
        """Per distinct record: the test example contaminating it (-1: none), how, and its prompt's highest
        cosine similarity to a test prompt. The embedding test compares prompts with prompts: each record
        is embedded once more with its responses blanked (short texts; cached like any other), as the test
        prompts are, so that a long or unrelated response does not hide a copied question."""
        from .executors.local import LocalExecutor
        from .selection.decontaminate import find_contaminated, user_texts

        if not self.tests:
            return np.full(len(records), -1, dtype=np.int64), [None] * len(records), None
        prompts_only = [prompt_record(r) for r in records]
        feats = LocalExecutor().featurize(self.stage, prompts_only, self.progress)
        return find_contaminated([user_texts(r.exchanges()) for r in records], [ex.prompts for _, ex in self.tests],
                                 np.asarray(feats.embeddings, dtype=np.float32), self.test_embeddings,
                                 prompt_owner=self.test_owner)

    def groups(self, unique: np.ndarray) -> tuple[list[str], np.ndarray] | None:
        """(values in first-seen order, each distinct record's value number); the input's record count per
        value (duplicates included) goes to `_input_sizes`."""
        from .selection.balance import group_ids

        if self.values is None:
            return None
        names, ids = group_ids(self.values)
        self._input_sizes = np.bincount(ids, minlength=len(names))
        return names, ids[unique]

    def rule_inputs(self, records: Sequence[Record], unique: np.ndarray, pos: np.ndarray) -> dict:
        """apply_rule's exclude, targets, groups and balance_mode for the distinct records at `pos`
        (positions among `unique`); what they were for every distinct record is kept for `notes`."""
        self._contaminated, self._how, self._similarity = self.contamination([records[i] for i in unique])
        grouped = self.groups(unique)
        self._names, self._groups = grouped if grouped is not None else (None, None)
        out: dict = {}
        if self.tests:
            out["exclude"] = self._contaminated[pos] >= 0
        if self.targets:
            out["targets"] = self.target_reduced
        if self._groups is not None:  # shares in proportion to the input's records, duplicates included
            out["groups"], out["balance_mode"] = self._groups[pos], self.balance_field[1]
            out["group_sizes"] = self._input_sizes
        return out

    def notes(self, rule, unique: np.ndarray, position: np.ndarray, source: np.ndarray, reduced: np.ndarray,
              pos: np.ndarray) -> "AimNotes":
        """What the run's summary and annotated rows say about the aims, once `rule` (apply_rule's outcome
        over the distinct records at `pos`) has chosen. `position[source]` maps input records to distinct ones."""
        chosen_u = position[rule.selection.indices]
        marks = self._contaminated[position[source]]
        untargeted = None if rule.untargeted is None else position[rule.untargeted]
        eligible = pos[rule.eligible_mask] if rule.eligible_mask is not None else pos
        how = [self._how[j] for j in position[source].tolist()]  # per input record, as the counts
        summary = self.summary(chosen_u, reduced, eligible, untargeted, how, marks, self._names, self._groups,
                               rule.quotas, rule.available)
        nearest = {}
        if self.targets and len(chosen_u):
            from .selection.target import nearest_target

            best, _ = nearest_target(reduced[chosen_u], self.target_reduced)
            nearest = {int(i): self.target_label(int(k)) for i, k in zip(rule.selection.indices.tolist(), best)}
        by = [None if k < 0 else self.test_label(int(k)) for k in marks.tolist()]
        similarity = None if self._similarity is None else self._similarity[position[source]]
        return AimNotes(summary, by if self.tests else None, nearest, similarity)

    def target_label(self, k: int) -> str:
        path, ex = self.targets[k]
        return where_label(path, ex.where)

    def test_label(self, k: int) -> str:
        path, ex = self.tests[k]
        return where_label(path, ex.where)

    def summary(self, chosen_u: np.ndarray, reduced: np.ndarray, eligible_u: np.ndarray, untargeted_u: np.ndarray | None,
                how: list[str | None], input_marks: np.ndarray, names: list[str] | None,
                groups_u: np.ndarray | None, quotas: np.ndarray | None, available: np.ndarray | None) -> dict:
        """The summary's "target", "decontamination" and "balance" entries. `chosen_u`, `eligible_u` and
        `untargeted_u` are distinct positions; `how` and `input_marks` (the test example, -1 for none) are
        per input record, duplicates included."""
        from .selection.target import random_coverage, target_coverage

        out: dict = {}
        if self.targets:
            t = self.target_reduced
            out["target"] = {
                "examples": len(self.targets), "files": list(self.config.targets),
                "coverage": round(target_coverage(reduced[chosen_u], t), 4),
                "coverage_random": round(random_coverage(reduced, eligible_u, len(chosen_u), t,
                                                         max(self.config.compare_seeds, 1), self.config.seed), 4),
                **({"coverage_untargeted": round(target_coverage(reduced[untargeted_u], t), 4)}
                   if untargeted_u is not None else {}),
            }
        if self.tests:
            files = {}
            for path in self.config.decontaminate:
                files.setdefault(path, {"examples": 0, "records": 0})
            for path, _ in self.tests:
                files[path]["examples"] += 1
            for k in input_marks[input_marks >= 0].tolist():
                files[self.tests[k][0]]["records"] += 1
            kinds = [h for h in how if h is not None]
            out["decontamination"] = {"contaminated": int((input_marks >= 0).sum()), "files": files,
                                      "by": {h: kinds.count(h) for h in ("exact", "ngram", "embedding")}}
        if names is not None:
            name, mode = self.balance_field
            selected = np.bincount(groups_u[chosen_u], minlength=len(names)) if len(chosen_u) else np.zeros(len(names))
            records = self._input_sizes
            out["balance"] = {"field": name, "mode": mode, "values": [
                {"value": v, "records": int(records[g]), "eligible": int(available[g]) if available is not None else 0,
                 "quota": int(quotas[g]) if quotas is not None else 0, "selected": int(selected[g])}
                for g, v in enumerate(names)]}
        return out


def prompt_record(record: Record) -> Record:
    """The record with every response blanked: what its user texts alone embed to."""
    return Record(instruction=record.instruction, output="", input=record.input,
                  history=tuple((u, "") for u, _ in record.history), system=record.system)


def value_text(value) -> str:
    """A balance field's value as the text that names its group (numbers and lists as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def format_aims(s: dict) -> list[str]:
    """The text summary's lines for the target, decontamination and balance entries."""
    lines = []
    if "target" in s:
        t = s["target"]
        untargeted = (f", {t['coverage_untargeted']:.3f} without targets" if "coverage_untargeted" in t else "")
        lines.append(f"target coverage     {t['coverage']:.3f} mean best cosine over {t['examples']:,} target "
                     f"examples (random subsets {t['coverage_random']:.3f}{untargeted})")
    if "decontamination" in s:
        d = s["decontamination"]
        per = "; ".join(f"{path} {v['records']:,}" for path, v in d["files"].items())
        by = ", ".join(f"{k} {n:,}" for k, n in d["by"].items() if n)
        lines.append(f"contaminated        {d['contaminated']:,} kept out ({per})" + (f" by {by}" if by else ""))
    if "balance" in s:
        b = s["balance"]
        width = max([len(v["value"]) for v in b["values"]] + [5])
        lines.append(f"balance             {b['field']} ({b['mode']}):")
        lines.append(f"  {'value':<{width}}  records  quota  selected")
        for v in b["values"]:
            lines.append(f"  {v['value']:<{width}}  {v['records']:>7,}  {v['quota']:>5,}  {v['selected']:>8,}")
    return lines



@dataclass
class AimNotes:
    """A run's targeting outcome: its summary entries and what each annotated row says."""

    summary: dict
    contaminated_by: list[str | None] | None  # per input record: "file:line" of the test prompt, or None
    nearest_target: dict[int, str]  # per selected input record: "file:line" of its most similar target example
    # per input record: the highest cosine similarity to a test example (None without --decontaminate)
    test_similarity: np.ndarray | None = None

    def annotate(self, i: int, row: dict) -> None:
        if self.contaminated_by is not None and self.contaminated_by[i] is not None:
            row["reason"], row["contaminated_by"] = "contaminated", self.contaminated_by[i]
            row.pop("duplicate_of", None)
        if i in self.nearest_target:
            row["target"] = self.nearest_target[i]
