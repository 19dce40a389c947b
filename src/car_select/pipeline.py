"""The local engine: wires the stages (render -> score+embed -> PCA + k-means -> CaR rule), times
them and reports progress. `select()` is the Python API the CLI is a thin layer over."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .config import Config
from .errors import CarSelectError, CarSelectWarning
from .executors import LocalExecutor
from .records import Record
from .render import render_record
from .scoring.scorer import Scorer
from .selection.apply import apply_rule
from .stages import ClusterEstimator, Featurize
from .targeting import AimNotes, Aims


@dataclass
class Selection:
    """The outcome of a run, per input record (duplicates included) and for the selection."""

    indices: np.ndarray  # selected input positions, best score first
    reasons: list[str]  # parallel to indices: "top_n1" / "cluster_top" (car), "coverage" (qd), "score_first" (deita)
    scores: np.ndarray  # (n,) score per input record (a duplicate carries its first copy's score)
    clusters: np.ndarray  # (n,) cluster per input record
    duplicate_of: np.ndarray  # (n,) position of the first identical record, -1 for first copies
    reduced: np.ndarray | None  # (n_unique, c) PCA-reduced embeddings of the unique records
    unique: np.ndarray  # positions of the unique records (first copies)
    k: int
    pca_components: int
    pca_variance_explained: float
    inertia: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0
    encoder_passes: int = 1
    # --- the rule as applied (issue 12) ---
    strategy: str = "car"  # Config.strategy: car (the paper's rule), qd or deita
    n1: int | None = None  # the n1 the CaR rule used (with a budget: the smallest that reaches it)
    n2: int | None = None
    budget: int | None = None  # records asked for (--budget / --fraction), None for a plain n1 run
    min_score: float | None = None  # the threshold applied (from min_percentile when that was given)
    min_percentile: float | None = None
    eligible: int = 0  # distinct records scoring at least min_score (all distinct records without it)
    warnings: list[str] = field(default_factory=list)
    # (n,) position of the better-scored kept record each input record is a near-duplicate of, -1 where none
    # (Config.near_duplicates; None when off). Exact copies keep duplicate_of, their first copy's value here.
    near_duplicate_of: np.ndarray | None = None
    empty_responses: int = 0  # distinct records whose response (in any exchange) is empty or whitespace
    # (n,) per input record: selection.turn_checks flags of its broken exchanges ([] where intact)
    turn_flags: list | None = None
    broken_turns_dropped: bool = True  # Config.keep_broken_turns False: flagged records were not eligible
    against_random: dict | None = None  # selection.baselines.compare_with_random: beside same-size baselines
    languages: dict | None = None  # languages.language_summary: detected languages, scorer's, warning
    record_languages: list | None = None  # per input record, when every distinct record was detected
    manifest: dict | None = None  # manifest.build_manifest, set by api.run (it knows the input file)
    aims: AimNotes | None = None  # targets, decontamination, balance (targeting.py), None without them
    # scored.describe: the schema (set by api.run), texts per record, aggregation, window, texts cut
    scored: dict | None = None

    @property
    def n_records(self) -> int:
        return len(self.scores)

    @property
    def duplicates_dropped(self) -> int:
        return int((self.duplicate_of >= 0).sum())

    @property
    def near_duplicates_dropped(self) -> int:
        """Distinct records dropped as near-duplicates (their exact copies are counted as duplicates)."""
        if self.near_duplicate_of is None:
            return 0
        return int(((self.near_duplicate_of >= 0) & (self.duplicate_of < 0)).sum())

    def selected_mask(self) -> np.ndarray:
        mask = np.zeros(self.n_records, dtype=bool)
        mask[self.indices] = True
        return mask

    def reason_per_record(self) -> list[str | None]:
        out: list[str | None] = [None] * self.n_records
        for i, r in zip(self.indices.tolist(), self.reasons):
            out[i] = r
        return out

    def annotations(self):
        """One dict per input record: index, score, cluster, selected, reason (the --annotated rows).
        A duplicate's reason is "duplicate", with `duplicate_of` the index of the copy kept; a
        near-duplicate's is "near_duplicate", with `duplicate_of` the better-scored record it resembles."""
        reasons = self.reason_per_record()
        for i in range(self.n_records):
            row = {"index": i, "score": float(self.scores[i]), "cluster": int(self.clusters[i]),
                   "selected": reasons[i] is not None, "reason": reasons[i]}
            if self.duplicate_of[i] >= 0:
                row["reason"], row["duplicate_of"] = "duplicate", int(self.duplicate_of[i])
            elif self.near_duplicate_of is not None and self.near_duplicate_of[i] >= 0:
                row["reason"], row["duplicate_of"] = "near_duplicate", int(self.near_duplicate_of[i])
            if self.turn_flags is not None and self.turn_flags[i]:
                row["flags"] = self.turn_flags[i]
                if self.broken_turns_dropped and self.duplicate_of[i] < 0:
                    row["reason"] = "broken_turn"
            if self.aims is not None:
                self.aims.annotate(i, row)
            if self.record_languages is not None:
                row["language"] = self.record_languages[i]
            yield row

    def _reason_counts(self) -> dict[str, int]:
        """selected_<reason>: CaR's two always (0 included, as before), another strategy's own."""
        reasons = (("top_n1", "cluster_top") if self.strategy == "car" and "target" not in self.reasons
                   else sorted(set(self.reasons)))
        return {f"selected_{r}": self.reasons.count(r) for r in reasons}

    def _broken_turn_counts(self) -> dict[str, int]:
        """broken_turns: distinct records with a flagged exchange; dropped or kept eligible (keep_broken_turns)."""
        if not self.turn_flags:
            return {}
        n = sum(1 for i in self.unique.tolist() if self.turn_flags[i])
        if not n:
            return {}
        return {"broken_turns_dropped" if self.broken_turns_dropped else "broken_turns_kept_eligible": n}

    def summary(self) -> dict:
        covered = len(np.unique(self.clusters[self.indices])) if len(self.indices) else 0
        return {
            "records_read": self.n_records,
            "duplicates_dropped": self.duplicates_dropped,
            **({"near_duplicates_dropped": self.near_duplicates_dropped} if self.near_duplicate_of is not None
               else {}),
            "k": self.k,
            "pca_components": self.pca_components,
            "pca_variance_explained": round(self.pca_variance_explained, 4),
            **({"strategy": self.strategy} if self.strategy != "car" else {}),
            **({"n1": self.n1, "n2": self.n2} if self.n1 is not None else {}),
            **({"budget": self.budget} if self.budget is not None else {}),
            **({"min_score": self.min_score, "eligible": self.eligible} if self.min_score is not None else {}),
            **({"min_percentile": self.min_percentile} if self.min_percentile is not None else {}),
            "selected": int(len(self.indices)),
            **self._reason_counts(),
            "clusters_covered": covered,
            **({"empty_responses": self.empty_responses} if self.empty_responses else {}),
            **self._broken_turn_counts(),
            **({"scored": self.scored} if self.scored else {}),
            "cache_hits": self.cache_hits,
            "encoder_passes": self.encoder_passes,
            **({"against_random": self.against_random} if self.against_random else {}),
            **(self.aims.summary if self.aims is not None else {}),
            **({"languages": self.languages} if self.languages else {}),
            **({"manifest": self.manifest} if self.manifest else {}),
            **({"warnings": list(self.warnings)} if self.warnings else {}),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


class Progress:
    """Stage progress through tqdm on stderr; silent when quiet."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    @contextmanager
    def bar(self, desc: str, total: int, unit: str = "text"):
        if self.quiet or total == 0:
            yield lambda n, _tokens=0: None
            return
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True) as bar:
            yield lambda n, _tokens=0: bar.update(n)


def dedupe(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """(unique positions, duplicate_of) by identical rendered text; the first copy is kept."""
    first: dict[str, int] = {}
    duplicate_of = np.full(len(records), -1, dtype=np.int64)
    for i, record in enumerate(records):
        j = first.setdefault(render_record(record), i)
        if j != i:
            duplicate_of[i] = j
    return np.flatnonzero(duplicate_of < 0), duplicate_of


def select(records: Sequence[Record], config: Config | None = None, *, scorer: Scorer | None = None,
           scores: Sequence[float] | np.ndarray | None = None, quiet: bool = True,
           progress: Progress | None = None, executor=None, balance_values: Sequence | None = None) -> Selection:
    """Run CaR on `records` and return the Selection (nothing is written). `scores`, one per record
    (e.g. from `given_scores.read_score_field`), replaces the scorer: records are only embedded.
    `balance_values`, one per record (given_scores.read_value_field), are what Config.balance splits by."""
    return select_validated(records, (config or Config()).validate(), scorer=scorer, scores=scores, quiet=quiet,
                            progress=progress, executor=executor, balance_values=balance_values)


def select_validated(records: Sequence[Record], config: Config, *, scorer: Scorer | None = None,
                     scores: Sequence[float] | np.ndarray | None = None, quiet: bool = True,
                     progress: Progress | None = None, executor=None, balance_values: Sequence | None = None
                     ) -> Selection:
    """`select` for a Config that was validated already (api.run validates it before reading the input,
    so that a run validates its settings once)."""
    progress = progress or Progress(quiet)
    if not records:
        raise CarSelectError("the dataset has no records")
    if config.score_field is not None and scores is None:
        raise CarSelectError(f"score_field {config.score_field!r} needs the dataset's rows: use api.run, or pass "
                             "scores= (car_select.given_scores.read_score_field)")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(records),):
            raise CarSelectError(f"scores: expected one score per record ({len(records)}), got shape {scores.shape}")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    unique, duplicate_of = dedupe(records)
    config.check_fits(len(unique), len(records))
    aims = Aims.read(config, len(records), balance_values)  # example files are read (and refused) before any work
    seconds["render"] = time.perf_counter() - t
    executor = executor or LocalExecutor()

    t = time.perf_counter()
    # the model loads (in whichever process runs the stage) only if something is not cached
    stage = Featurize(config, scorer)
    feats = executor.featurize(stage, [records[i] for i in unique], progress)
    scores_u, hits = feats.scores, feats.cache_hits
    if scores is not None:  # given scores replace the scorer's (its pass gave the embedding)
        scores_u = scores[unique].astype(np.float32)
    seconds["score_embed"] = time.perf_counter() - t
    from .scored import describe, scorer_window

    scored = describe([records[i] for i in unique], config, scorer_window(config, scorer), feats.texts_cut)

    t = time.perf_counter()
    estimator = ClusterEstimator(config)
    labels_u, reduced = executor.cluster(estimator, feats)
    model = estimator.model
    seconds["cluster"] = time.perf_counter() - t
    if aims is not None:  # target and test examples, embedded like records, in the run's PCA space
        t = time.perf_counter()
        aims.embed(stage, estimator, progress)
        seconds["targets_embed"] = time.perf_counter() - t

    t = time.perf_counter()
    min_score = config.min_score
    if config.min_percentile is not None:  # the threshold on this data's own scale
        min_score = float(np.percentile(scores_u, config.min_percentile))
    from .selection.turn_checks import broken_turn_flags

    flags_u = broken_turn_flags([records[i] for i in unique])
    # records with a broken exchange are not eligible (their own reason), unless the user keeps them
    eligible_u = np.array([config.keep_broken_turns or not f for f in flags_u], dtype=bool)
    if not eligible_u.any():
        raise CarSelectError(f"every one of the {len(unique):,} distinct records has a broken exchange (an empty "
                             "reply or a leaked role marker): nothing to select; keep_broken_turns keeps them")
    pos = np.flatnonzero(eligible_u)
    rule = apply_rule(scores_u[pos], labels_u[pos], n1=config.n1, n2=config.n2, budget=config.budget,
                      fraction=config.fraction, min_score=min_score, n_records=len(records), index=unique[pos],
                      strategy=config.strategy, reduced=None if reduced is None else reduced[pos],
                      quality_weight=config.quality_weight, max_similarity=config.max_similarity,
                      near_duplicates_at=config.near_duplicates,
                      **({} if aims is None else aims.rule_inputs(records, unique, pos)))
    if rule.near_duplicate_of is not None and len(pos) < len(unique):  # eligible positions -> distinct ones
        near_all = np.full(len(unique), -1, dtype=np.int64)
        near_all[pos] = np.where(rule.near_duplicate_of >= 0, pos[np.maximum(rule.near_duplicate_of, 0)], -1)
        rule.near_duplicate_of = near_all
    for message in rule.warnings:
        warnings.warn(message, CarSelectWarning, stacklevel=2)
    chosen = rule.selection
    from .data_warnings import selection_warnings, top_by_score_warning

    top_only = top_by_score_warning(chosen.reasons, rule.n1, len(unique), rule.strategy, rule.budget)
    data_warnings, empty_responses = selection_warnings(records, unique, scores_u, chosen.indices, scores is not None,
                                                        top_by_score=top_only is not None)
    data_warnings = [top_only] * (top_only is not None) + data_warnings
    for message in data_warnings:
        warnings.warn(message, CarSelectWarning, stacklevel=2)
    rule.warnings.extend(data_warnings)
    source = np.where(duplicate_of >= 0, duplicate_of, np.arange(len(records)))
    position = np.empty(len(records), dtype=np.int64)
    position[unique] = np.arange(len(unique))
    scores = scores_u[position[source]]
    clusters = labels_u[position[source]]
    near_duplicate_of = None
    if rule.near_duplicate_of is not None:  # distinct positions -> input positions, per input record
        near_u = np.where(rule.near_duplicate_of >= 0, unique[np.maximum(rule.near_duplicate_of, 0)], -1)
        near_duplicate_of = near_u[position[source]]
    aim_notes = None if aims is None else aims.notes(rule, unique, position, source, reduced, pos)
    seconds["select"] = time.perf_counter() - t

    against_random = None
    if config.compare_seeds:
        t = time.perf_counter()
        from .selection.baselines import compare_with_random, output_words

        chosen_u = position[chosen.indices]
        against_random = compare_with_random(scores_u, labels_u, reduced, output_words([records[i] for i in unique]),
                                             chosen_u, seeds=config.compare_seeds, seed=config.seed)
        seconds["compare"] = time.perf_counter() - t

    languages, record_languages = None, None
    if config.language_sample != 0:
        t = time.perf_counter()
        from .languages import language_summary, scorer_languages

        languages, record_languages = language_summary(
            records, unique, duplicate_of, config.language_sample, config.seed,
            scorer_languages(config.scorer, config.score_field))
        if languages["warning"]:
            warnings.warn(languages["warning"], CarSelectWarning, stacklevel=2)
            rule.warnings.append(languages["warning"])
        seconds["languages"] = time.perf_counter() - t

    return Selection(
        indices=chosen.indices, reasons=chosen.reasons, scores=scores, clusters=clusters,
        duplicate_of=duplicate_of, reduced=reduced, unique=unique, k=model.k,
        pca_components=model.n_components, pca_variance_explained=model.explained_variance,
        inertia=model.inertia, stage_seconds=seconds, cache_hits=hits, encoder_passes=feats.passes,
        strategy=rule.strategy, n1=rule.n1, n2=rule.n2, budget=rule.budget, min_score=min_score,
        min_percentile=config.min_percentile,
        eligible=rule.eligible, warnings=rule.warnings, near_duplicate_of=near_duplicate_of,
        empty_responses=empty_responses, against_random=against_random, languages=languages,
        record_languages=record_languages, scored=scored, aims=aim_notes,
        turn_flags=[flags_u[i] for i in position[source]], broken_turns_dropped=not config.keep_broken_turns,
    )
