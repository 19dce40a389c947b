"""The paper's released IQS checkpoint (a COMET / PyTorch-Lightning `.ckpt`) as a car-select Scorer.

CaR trained its Instruction Quality Scorer with a fork of Unbabel's COMET (`comet.models.InstructionMetric`,
class_identifier `instruction_metric`, a one-input variant of COMET's RegressionMetric). What that
checkpoint holds, as read from IronBeliever/CaR (Ranking/comet/models/regression/instruction_metric.py,
Ranking/configs/models/instruction_score.yaml, Ranking/comet/models/__init__.py) and Unbabel/COMET
(comet/models/base.py, comet/encoders/xlmr.py + bert.py + base.py, comet/modules/layerwise_attention.py,
comet/modules/feedforward.py, comet/models/pooling_utils.py):

  checkpoint["state_dict"]
    encoder.model.<key>                        the Hugging Face encoder (XLMRobertaModel built with
                                               add_pooling_layer=False); old transformers also stored
                                               embeddings.position_ids
    layerwise_attention.scalar_parameters.<i>  one (1,) Parameter per hidden state (layers + embeddings)
    layerwise_attention.gamma                  (1,)
    layerwise_attention.dropout_mask/_fill     buffers, present when dropout > 0; training-only
    estimator.ff.<j>.weight/bias               nn.Sequential: (Linear, activation, Dropout) per hidden
                                               size, then Linear(..., 1) [+ final activation, if any]
  checkpoint["hyper_parameters"]               the model's init arguments (COMET builds the model from
                                               these; hparams.yaml is only read for class_identifier)
  hparams.yaml                                 in the folder above checkpoints/ (COMET's
                                               load_from_checkpoint looks at checkpoint.parents[1])

The forward pass is: all hidden states -> gamma * sum_i t(w)_i * layer_i (t = sparsemax or softmax,
optionally after a per-sentence layer norm) -> average over non-padding tokens -> estimator. Our
QualityEstimator computes the same thing when pool is "avg", layer is "mix" and layer_norm is off (the
CaR IQS config); a softmax mix is converted exactly (sparsemax(p) = p for any p on the simplex). Any
other layout is refused with a one-line CarSelectError rather than scored differently.

tests/scoring/data/comet_fixture is such a checkpoint written by unbabel-comet 2.2.7 itself (tiny XLM-R,
made by scripts/make_comet_fixture.py), with the scores COMET's predict() gave; the tests reproduce them.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
import yaml
from torch import nn

from ..atomic import atomic_path
from ..encode import resolve_encoder_path
from ..errors import CarSelectError
from .model import HeadConfig, QualityEstimator, ScoringHead
from .scorer import Scorer

__all__ = [
    "ENCODER_ENV",
    "find_checkpoint",
    "find_hparams",
    "load_official_checkpoint",
    "write_official_style_checkpoint",
]

ENCODER_ENV = "CAR_SELECT_OFFICIAL_ENCODER"  # a local encoder folder (config + tokenizer) to use offline
CLASS_IDENTIFIER = "instruction_metric"
ENCODER_PREFIX = "encoder.model."
MIX_PREFIX = "layerwise_attention."
HEAD_PREFIX = "estimator.ff."
LIGHTNING_VERSION = "2.1.0"

# COMET's own defaults (comet/models/base.py, CometModel.__init__) for hparams a checkpoint may lack.
COMET_DEFAULTS = {
    "pool": "avg",
    "layer": "mix",
    "layer_transformation": "softmax",
    "layer_norm": True,
    "activations": "Tanh",
    "final_activation": None,
    "dropout": 0.1,
    "hidden_sizes": [2048, 1024],
}
# COMET's str2encoder names, by transformers model_type (for the hparams we write).
COMET_ENCODER_NAMES = {
    "xlm-roberta": "XLM-RoBERTa",
    "xlm-roberta-xl": "XLM-RoBERTa-XL",
    "rembert": "RemBERT",
    "bert": "BERT",
}
_IGNORED_ENCODER_SUFFIXES = ("position_ids", "token_type_ids")  # buffers, rebuilt by transformers
_IGNORED_MIX_KEYS = ("dropout_mask", "dropout_fill")  # layer-dropout buffers, training only


# ---- finding the files ----------------------------------------------------------------------------
def find_checkpoint(path: str | os.PathLike) -> Path:
    """The .ckpt file itself, or the only one under a folder (checkpoints/*.ckpt first, then **/*.ckpt)."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".ckpt":
            raise CarSelectError(f"{path}: not a COMET checkpoint (expected a .ckpt file)")
        return path
    if not path.is_dir():
        raise CarSelectError(f"{path}: no such file or directory")
    for pattern in ("checkpoints/*.ckpt", "**/*.ckpt"):
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(str(p.relative_to(path)) for p in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            raise CarSelectError(
                f"{path}: {len(found)} .ckpt files found ({names}{more}); pass the one to use"
            )
    raise CarSelectError(f"{path}: no .ckpt file found (looked for checkpoints/*.ckpt and **/*.ckpt)")


def find_hparams(ckpt: Path) -> Path | None:
    """hparams.yaml next to the .ckpt, or one folder up (COMET's checkpoints/model.ckpt layout)."""
    for folder in (ckpt.parent, ckpt.parent.parent):
        candidate = folder / "hparams.yaml"
        if candidate.is_file():
            return candidate
    return None


class _HparamsLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads the `!!python/tuple` tag Lightning can write (as a list)."""


_HparamsLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node)
)


def _read_hparams(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_HparamsLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CarSelectError(f"{path}: cannot read hparams: {reason}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CarSelectError(f"{path}: expected a mapping of hyper-parameters, found {type(data).__name__}")
    return data


def _unpickling_reason(exc: BaseException) -> str:
    """The informative line of torch's weights-only refusal (it starts with generic advice)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            tail = line.split("WeightsUnpickler error:", 1)[-1].strip()
            if tail:
                return tail
            return lines[i + 1] if i + 1 < len(lines) else line
    return lines[0] if lines else type(exc).__name__


def _torch_load(ckpt: Path) -> dict:
    """torch.load with weights_only=True (never unpickles code), memory-mapped when possible."""
    import zipfile

    try:
        with open(ckpt, "rb") as f:
            magic = f.read(2)
    except OSError as exc:
        raise CarSelectError(f"{ckpt}: cannot read the checkpoint: {exc.strerror or exc}") from None
    if not zipfile.is_zipfile(ckpt) and magic[:1] != b"\x80":  # neither torch.save format
        raise CarSelectError(f"{ckpt}: not a PyTorch checkpoint (torch.save) file")

    def load(**extra):
        try:
            return torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True, **extra)
        except RuntimeError as exc:  # legacy (non-zip) serialisation cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            return torch.load(ckpt, map_location="cpu", weights_only=True, **extra)

    try:
        try:
            data = load()
        except pickle.UnpicklingError:
            # Lightning callback states may hold numpy scalars; allow just those plain-data types.
            safe = _numpy_safe_globals()
            if not safe or not hasattr(torch.serialization, "safe_globals"):
                raise
            with torch.serialization.safe_globals(safe):
                data = load()
    except pickle.UnpicklingError as exc:
        reason = _unpickling_reason(exc)
        raise CarSelectError(
            f"{ckpt}: cannot be loaded safely (torch.load with weights_only=True, which only accepts tensors "
            f"and plain data, said: {reason})"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CarSelectError(f"{ckpt}: cannot read the checkpoint: {first}") from None
    if not isinstance(data, dict):
        raise CarSelectError(f"{ckpt}: not a Lightning checkpoint (expected a dict, found {type(data).__name__})")
    return data


def _numpy_safe_globals() -> list:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return []
    out: list = [np.dtype]
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = __import__(mod, fromlist=["scalar"])
            out.append(module.scalar)
            break
        except (ImportError, AttributeError):
            continue
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return out


# ---- reading the hyper-parameters ------------------------------------------------------------------
def _parse_hidden_sizes(value, where: str) -> list[int]:
    """[2048, 1024] (COMET >= 1) or "3072,1024" (older COMET)."""
    items = value.replace(" ", "").split(",") if isinstance(value, str) else value
    try:
        sizes = [int(x) for x in items]
        if not sizes or any(s <= 0 for s in sizes) or any(isinstance(x, float) and x != int(x) for x in items):
            raise ValueError
    except (TypeError, ValueError):
        raise CarSelectError(f"{where}: hidden_sizes must be a list of positive integers, found {value!r}") from None
    return sizes


class _Hparams:
    """Effective hyper-parameters and the file each came from (for error messages)."""

    def __init__(self, ckpt: Path, yaml_path: Path | None, from_yaml: dict, from_ckpt: dict):
        self.values = {**COMET_DEFAULTS, **from_yaml, **from_ckpt}
        self.origin = {k: ckpt for k in from_ckpt}
        self.origin.update({k: yaml_path for k in from_yaml if k not in from_ckpt})
        self.ckpt = ckpt
        # COMET picks the model class from hparams.yaml; the checkpoint's own copy is the fallback.
        self.class_identifier = from_yaml.get("class_identifier", from_ckpt.get("class_identifier"))
        self.class_origin = yaml_path if "class_identifier" in from_yaml else ckpt

    def where(self, key: str) -> str:
        src = self.origin.get(key)
        return f"{src}: {key}" if src is not None else f"{self.ckpt}: {key} (COMET's default)"

    def __getitem__(self, key: str):
        return self.values[key]


def _check_layout(h: _Hparams) -> None:
    cls = h.class_identifier
    if cls is not None and cls != CLASS_IDENTIFIER:
        hint = (
            " (a ranking/triplet model has no regression head)" if "ranking" in str(cls)
            else " (it takes more than one input or has a different head)"
        )
        raise CarSelectError(
            f"{h.class_origin}: class_identifier is {cls!r}{hint}; car-select loads the CaR IQS, "
            f"a COMET {CLASS_IDENTIFIER!r} checkpoint"
        )
    if h["pool"] != "avg":
        raise CarSelectError(
            f"{h.where('pool')} is {h['pool']!r}; car-select's scorer mean-pools tokens, so only pool: avg "
            "checkpoints can be scored faithfully"
        )
    if h["layer"] != "mix":
        raise CarSelectError(
            f"{h.where('layer')} is {h['layer']!r}; car-select's scorer mixes all layers, so only layer: mix "
            "checkpoints can be scored faithfully"
        )
    if h["layer_transformation"] not in ("sparsemax", "softmax"):
        raise CarSelectError(
            f"{h.where('layer_transformation')} is {h['layer_transformation']!r}; expected sparsemax or softmax"
        )
    if h["layer_norm"] not in (False, None, 0, "false", "False"):
        raise CarSelectError(
            f"{h.where('layer_norm')} is {h['layer_norm']!r}; the per-sentence layer norm before the layer mix "
            "is not supported (the CaR IQS was trained with layer_norm: False)"
        )
    if h["final_activation"] not in (None, "", "null", "None"):
        raise CarSelectError(
            f"{h.where('final_activation')} is {h['final_activation']!r}; car-select's head ends in a plain "
            "Linear layer, so a final activation is not supported"
        )
    act = h["activations"]
    if not isinstance(act, str) or not isinstance(getattr(nn, act, None), type) or not issubclass(getattr(nn, act), nn.Module):
        raise CarSelectError(f"{h.where('activations')} is {act!r}; expected a torch.nn activation name such as Tanh")
    try:
        float(h["dropout"])
    except (TypeError, ValueError):
        raise CarSelectError(f"{h.where('dropout')} is {h['dropout']!r}; expected a number") from None


# ---- building the model -----------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_encoder_parts(source: str, where: str):
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_encoder_path(source)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - transformers raises OSError, ValueError, HF errors...
        raise CarSelectError(
            f"{where}: cannot load the encoder's config and tokenizer from {source!r} ({_one_line(exc)}); "
            f"with no network, pass encoder=... or set {ENCODER_ENV} to a local folder holding them"
        ) from None
    return config, tokenizer


def _build_encoder(config) -> nn.Module:
    """The encoder architecture with random weights (all of them are overwritten from the checkpoint)."""
    from transformers import AutoModel

    try:
        return AutoModel.from_config(config, add_pooling_layer=False)  # COMET's XLM-R has no pooler
    except TypeError:  # an architecture without a pooler option
        return AutoModel.from_config(config)


def _comet_max_length(config) -> int:
    """COMET truncates at encoder.max_positions - 2, and every COMET 2.x encoder (BERT included: they all
    inherit BERTEncoder's) reports max_positions = max_position_embeddings - 2: 510 tokens for XLM-R's
    514 positions, 508 for BERT's 512."""
    n = int(getattr(config, "max_position_embeddings", 514) or 514)
    return max(8, n - 4)


def _local_pretrained(pretrained: str, ckpt: Path) -> str:
    """`pretrained_model` as COMET would find it, or the same name in the model's own folder.

    COMET hands pretrained_model to transformers as is: a hub id, or a folder relative to the working
    directory. A model folder that carries its encoder's config and tokenizer beside hparams.yaml (as
    tests/scoring/data/comet_fixture does) is only self-contained if that name is also looked up there,
    wherever the process runs; an existing path keeps COMET's meaning.
    """
    if Path(pretrained).is_absolute() or Path(pretrained).exists():
        return pretrained
    for folder in (ckpt.parent, ckpt.parent.parent):  # where find_hparams looks; COMET: parents[1]
        candidate = folder / pretrained
        if candidate.is_dir():
            return str(candidate)
    return pretrained


def _mismatch(prefix: str, missing: list[str], unexpected: list[str]) -> str:
    """'missing a, b; unexpected c' for state-dict keys under `prefix`."""
    parts = [f"{label} {_summ([prefix + k for k in keys])}"
             for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
    return "; ".join(parts)


def _summ(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_official_checkpoint(
    path: str | os.PathLike,
    encoder: str | os.PathLike | None = None,
    max_length: int | None = None,
) -> Scorer:
    """Load the paper's COMET-style IQS checkpoint (`path`: the .ckpt, or a folder holding one).

    The encoder's architecture and tokenizer come from `encoder`, else the CAR_SELECT_OFFICIAL_ENCODER
    environment variable, else the checkpoint's `pretrained_model` (a Hugging Face id such as
    xlm-roberta-large: needs the network once, or a local folder, looked up in the working directory and
    then beside the checkpoint and its hparams.yaml). Its weights always come from the checkpoint.
    `max_length` defaults to COMET's truncation length (510 tokens for XLM-R).
    """
    ckpt = find_checkpoint(path)
    yaml_path = find_hparams(ckpt)
    from_yaml = _read_hparams(yaml_path) if yaml_path is not None else {}
    data = _torch_load(ckpt)
    state = data.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise CarSelectError(
            f"{ckpt}: no 'state_dict' in the checkpoint (expected a PyTorch-Lightning checkpoint of a COMET model)"
        )
    from_ckpt = data.get("hyper_parameters") or {}
    if not isinstance(from_ckpt, dict):
        from_ckpt = {}
    if yaml_path is None and not from_ckpt:
        raise CarSelectError(
            f"{ckpt}: no hparams.yaml next to it or one folder up, and no hyper_parameters inside it"
        )
    h = _Hparams(ckpt, yaml_path, from_yaml, from_ckpt)
    _check_layout(h)
    pretrained = h.values.get("pretrained_model")
    if not pretrained or not isinstance(pretrained, str):
        raise CarSelectError(f"{h.where('pretrained_model')} is missing; cannot tell which encoder to build")
    hidden_sizes = _parse_hidden_sizes(h["hidden_sizes"], h.where("hidden_sizes"))

    # -- split the state dict
    enc_state, mix_state, head_state, other = {}, {}, {}, []
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            other.append(key)
        elif key.startswith(ENCODER_PREFIX):
            enc_state[key[len(ENCODER_PREFIX):]] = value
        elif key.startswith(MIX_PREFIX):
            mix_state[key[len(MIX_PREFIX):]] = value
        elif key.startswith(HEAD_PREFIX):
            head_state[key[len(HEAD_PREFIX):]] = value
        else:
            other.append(key)
    expected = (
        f"expected a COMET {CLASS_IDENTIFIER} (CaR IQS) checkpoint with {ENCODER_PREFIX}*, "
        f"{MIX_PREFIX}scalar_parameters.N, {MIX_PREFIX}gamma and {HEAD_PREFIX}N.weight/bias"
    )
    if other:
        raise CarSelectError(f"{ckpt}: unexpected state_dict keys {_summ(sorted(other))}; {expected}")
    if not enc_state:
        raise CarSelectError(f"{ckpt}: no {ENCODER_PREFIX}* weights; {expected}")

    # -- layer mix and estimator: everything checkable before the encoder is fetched
    unknown_mix = sorted(
        k for k in mix_state
        if k != "gamma" and k not in _IGNORED_MIX_KEYS
        and not (k.startswith("scalar_parameters.") and k.split(".")[-1].isdigit())
    )
    if unknown_mix:
        raise CarSelectError(
            f"{ckpt}: unexpected state_dict keys {_summ([MIX_PREFIX + k for k in unknown_mix])}; {expected}"
        )
    indices = sorted(int(k.split(".")[-1]) for k in mix_state if k.startswith("scalar_parameters."))
    if not indices:
        raise CarSelectError(f"{ckpt}: missing state_dict key {MIX_PREFIX}scalar_parameters.0; {expected}")
    for i in range(indices[-1] + 1):
        key = f"scalar_parameters.{i}"
        if key not in mix_state:
            raise CarSelectError(f"{ckpt}: missing state_dict key {MIX_PREFIX}{key}; {expected}")
        if mix_state[key].numel() != 1:
            raise CarSelectError(
                f"{ckpt}: {MIX_PREFIX}{key} must hold one number, found shape {tuple(mix_state[key].shape)}"
            )
    if "gamma" not in mix_state or mix_state["gamma"].numel() != 1:
        raise CarSelectError(f"{ckpt}: missing state_dict key {MIX_PREFIX}gamma; {expected}")
    head_names = {f"{3 * j}.{p}" for j in range(len(hidden_sizes) + 1) for p in ("weight", "bias")}
    missing = sorted(head_names - set(head_state), key=lambda k: (int(k.split(".")[0]), k))
    unexpected = sorted(set(head_state) - head_names)
    if missing or unexpected:
        raise CarSelectError(f"{ckpt}: the estimator does not match hidden_sizes {hidden_sizes}: "
                             f"{_mismatch(HEAD_PREFIX, missing, unexpected)}; {expected}")
    out_rows = head_state[f"{3 * len(hidden_sizes)}.weight"].shape[0]
    if out_rows != 1:
        raise CarSelectError(
            f"{ckpt}: {HEAD_PREFIX}{3 * len(hidden_sizes)}.weight has {out_rows} outputs; the IQS predicts one score"
        )

    # -- encoder
    source = str(encoder) if encoder else os.environ.get(ENCODER_ENV) or _local_pretrained(pretrained, ckpt)
    config, tokenizer = _load_encoder_parts(source, str(ckpt))
    hidden = int(config.hidden_size)
    num_layers = int(config.num_hidden_layers) + 1
    if len(indices) < num_layers:
        raise CarSelectError(
            f"{ckpt}: missing state_dict key {MIX_PREFIX}scalar_parameters.{len(indices)} (the {source!r} encoder "
            f"has {num_layers} hidden states, layers + embeddings, but the layer mix has {len(indices)} weights)"
        )
    if len(indices) > num_layers:
        raise CarSelectError(
            f"{ckpt}: {len(indices)} layer-mix weights but the {source!r} encoder has {num_layers} hidden states "
            "(layers + embeddings)"
        )
    model_encoder = _build_encoder(config)
    own = model_encoder.state_dict()
    def ignorable(k: str) -> bool:  # the unused pooler and buffers transformers rebuilds itself
        return k.startswith("pooler.") or k.endswith(_IGNORED_ENCODER_SUFFIXES)

    missing = sorted(k for k in own if k not in enc_state and not ignorable(k))
    unexpected = sorted(k for k in enc_state if k not in own and not ignorable(k))
    if missing or unexpected:
        raise CarSelectError(
            f"{ckpt}: the encoder weights do not match the {getattr(config, 'model_type', '?')} architecture of "
            f"{source!r}: {_mismatch(ENCODER_PREFIX, missing, unexpected)}"
        )
    bad_shapes = [k for k in own if k in enc_state and tuple(own[k].shape) != tuple(enc_state[k].shape)]
    if bad_shapes:
        k = bad_shapes[0]
        raise CarSelectError(
            f"{ckpt}: {ENCODER_PREFIX}{k} has shape {tuple(enc_state[k].shape)} but the {source!r} architecture "
            f"needs {tuple(own[k].shape)} ({len(bad_shapes)} mismatched tensors)"
        )
    model_encoder.load_state_dict({k: v for k, v in enc_state.items() if k in own}, strict=False)

    weights = torch.cat([mix_state[f"scalar_parameters.{i}"].reshape(1).float() for i in range(num_layers)])
    if h["layer_transformation"] == "softmax":
        weights = torch.softmax(weights, dim=0)  # sparsemax(p) == p for p on the simplex: an exact conversion

    # -- estimator
    head_cfg = HeadConfig(
        hidden_size=hidden,
        num_layers=num_layers,
        hidden_sizes=hidden_sizes,
        activation=h["activations"],
        dropout=float(h["dropout"]),
        objective="regression",
        output_size=1,
    )
    head = ScoringHead(head_cfg)
    for k, v in head.estimator.ff.state_dict().items():
        if tuple(v.shape) != tuple(head_state[k].shape):
            hint = ""
            if k == "0.weight" and head_state[k].ndim == 2 and head_state[k].shape[1] != hidden:
                hint = (
                    f" (its input is {head_state[k].shape[1]} wide, not the encoder's {hidden}: a multi-input "
                    "COMET metric, not the one-input IQS)"
                )
            raise CarSelectError(
                f"{ckpt}: {HEAD_PREFIX}{k} has shape {tuple(head_state[k].shape)}, expected {tuple(v.shape)}{hint}"
            )
    head.estimator.ff.load_state_dict({k: v.float() for k, v in head_state.items()})
    with torch.no_grad():
        head.layerwise_attention.scalar_parameters.copy_(weights)
        head.layerwise_attention.gamma.copy_(mix_state["gamma"].reshape(1).float())

    model = QualityEstimator(model_encoder, head, train_encoder=True)  # the encoder was fine-tuned
    meta = {
        "source": "official-comet-checkpoint",
        "checkpoint": str(ckpt),
        "class_identifier": h.class_identifier or CLASS_IDENTIFIER,
        "layer_transformation": h["layer_transformation"],
    }
    if source != pretrained:
        meta["encoder_source"] = source
    scorer = Scorer(model, tokenizer, pretrained, max_length or _comet_max_length(config), meta=meta)
    scorer._source = ckpt
    return scorer.eval_mode()


# ---- writing ----------------------------------------------------------------------------------------
def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").clone().contiguous()


def write_official_style_checkpoint(scorer: Scorer, directory: str | os.PathLike) -> Path:
    """Write `scorer` in the official COMET layout: directory/checkpoints/model.ckpt + directory/hparams.yaml.

    The .ckpt is a Lightning-style dict of tensors and plain Python values only (torch.load with
    weights_only=True reads it), so both load_official_checkpoint and COMET's own load_from_checkpoint
    (with the CaR fork's InstructionMetric) accept it. Returns the .ckpt path.
    """
    cfg = scorer.head_config
    if cfg.objective == "triplet" or cfg.output_size != 1:
        raise CarSelectError(
            f"cannot export a {cfg.objective!r} scorer with {cfg.output_size} outputs as a COMET IQS "
            "checkpoint: it needs a one-score head"
        )
    directory = Path(directory)
    (directory / "checkpoints").mkdir(parents=True, exist_ok=True)

    state: dict[str, torch.Tensor] = {}
    for key, value in scorer.model.encoder.state_dict().items():
        if key.startswith("pooler."):  # COMET builds its encoder without the pooler
            continue
        state[ENCODER_PREFIX + key] = _plain(value)
    mix = scorer.model.head.layerwise_attention
    for i, w in enumerate(mix.scalar_parameters.detach().reshape(-1)):
        state[f"{MIX_PREFIX}scalar_parameters.{i}"] = _plain(w.reshape(1))
    state[f"{MIX_PREFIX}gamma"] = _plain(mix.gamma.reshape(1))
    n = mix.scalar_parameters.numel()
    if cfg.dropout:  # COMET's LayerwiseAttention registers these buffers when dropout > 0
        state[f"{MIX_PREFIX}dropout_mask"] = torch.zeros(n)
        state[f"{MIX_PREFIX}dropout_fill"] = torch.full((n,), -1e20)
    for key, value in scorer.model.head.estimator.ff.state_dict().items():
        state[HEAD_PREFIX + key] = _plain(value)

    model_type = getattr(scorer.model.encoder.config, "model_type", "")
    hparams = {
        "nr_frozen_epochs": 0.3,
        "keep_embeddings_frozen": True,
        "optimizer": "AdamW",
        "warmup_steps": 0,
        "encoder_learning_rate": 1.0e-06,
        "learning_rate": 1.5e-05,
        "layerwise_decay": 0.95,
        "encoder_model": COMET_ENCODER_NAMES.get(model_type, "BERT"),
        "pretrained_model": str(scorer.encoder_name),
        "pool": "avg",
        "layer": "mix",
        "layer_transformation": "sparsemax",
        "layer_norm": False,
        "loss": "mse",
        "dropout": float(cfg.dropout),
        "batch_size": 8,
        "train_data": None,
        "validation_data": None,
        "hidden_sizes": [int(s) for s in cfg.hidden_sizes],
        "activations": str(cfg.activation),
        "final_activation": None,
        "load_pretrained_weights": True,
        "class_identifier": CLASS_IDENTIFIER,
    }
    checkpoint = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": LIGHTNING_VERSION,
        "state_dict": state,
        "hyper_parameters": dict(hparams),
    }
    ckpt = directory / "checkpoints" / "model.ckpt"
    with atomic_path(ckpt) as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(directory / "hparams.yaml") as tmp:
        Path(tmp).write_text(yaml.safe_dump(hparams, sort_keys=False), encoding="utf-8")
    return ckpt
