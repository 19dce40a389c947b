"""The paper's released IQS checkpoint (a COMET / PyTorch-Lightning `.ckpt`): finding, reading, checking.

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

comet_checkpoint.py finds, reads and checks the files; official.py builds the scorer's model from them;
comet_export.py writes a scorer in this layout. tests/scoring/data/comet_fixture is such a checkpoint written by unbabel-comet 2.2.7 itself (tiny XLM-R,
made by scripts/make_comet_fixture.py), with the scores COMET's predict() gave; the tests reproduce them.
"""


from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from ..errors import CarSelectError

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
IGNORED_ENCODER_SUFFIXES = ("position_ids", "token_type_ids")  # buffers, rebuilt by transformers
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


class Hparams:
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


def check_layout(h: Hparams) -> None:
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


def key_mismatch(prefix: str, missing: list[str], unexpected: list[str]) -> str:
    """'missing a, b; unexpected c' for state-dict keys under `prefix`."""
    parts = [f"{label} {summarize_keys([prefix + k for k in keys])}"
             for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
    return "; ".join(parts)


def summarize_keys(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


@dataclass
class CheckpointContents:
    """What a checked COMET IQS checkpoint holds, split by part (keys without their prefixes)."""

    ckpt: Path
    hparams: Hparams
    pretrained: str  # the encoder the model was built on (hparams' pretrained_model)
    hidden_sizes: list[int]
    encoder_state: dict[str, torch.Tensor]
    mix_state: dict[str, torch.Tensor]
    head_state: dict[str, torch.Tensor]
    mix_weights: int  # how many layer-mix weights (hidden states: layers + embeddings)


def read_checkpoint(path: str | os.PathLike) -> CheckpointContents:
    """Find, read and check the paper's COMET-style IQS checkpoint (`path`: the .ckpt, or a folder
    holding one): everything that can be checked before the encoder is fetched."""
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
    h = Hparams(ckpt, yaml_path, from_yaml, from_ckpt)
    check_layout(h)
    pretrained = h.values.get("pretrained_model")
    if not pretrained or not isinstance(pretrained, str):
        raise CarSelectError(f"{h.where('pretrained_model')} is missing; cannot tell which encoder to build")
    hidden_sizes = _parse_hidden_sizes(h["hidden_sizes"], h.where("hidden_sizes"))

    # -- split the state dict
    encoder_state, mix_state, head_state, other = {}, {}, {}, []
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            other.append(key)
        elif key.startswith(ENCODER_PREFIX):
            encoder_state[key[len(ENCODER_PREFIX):]] = value
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
        raise CarSelectError(f"{ckpt}: unexpected state_dict keys {summarize_keys(sorted(other))}; {expected}")
    if not encoder_state:
        raise CarSelectError(f"{ckpt}: no {ENCODER_PREFIX}* weights; {expected}")

    # -- layer mix and estimator: everything checkable before the encoder is fetched
    unknown_mix = sorted(
        k for k in mix_state
        if k != "gamma" and k not in _IGNORED_MIX_KEYS
        and not (k.startswith("scalar_parameters.") and k.split(".")[-1].isdigit())
    )
    if unknown_mix:
        raise CarSelectError(
            f"{ckpt}: unexpected state_dict keys {summarize_keys([MIX_PREFIX + k for k in unknown_mix])}; {expected}"
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
                             f"{key_mismatch(HEAD_PREFIX, missing, unexpected)}; {expected}")
    out_rows = head_state[f"{3 * len(hidden_sizes)}.weight"].shape[0]
    if out_rows != 1:
        raise CarSelectError(
            f"{ckpt}: {HEAD_PREFIX}{3 * len(hidden_sizes)}.weight has {out_rows} outputs; the IQS predicts one score"
        )

    return CheckpointContents(ckpt, h, pretrained, hidden_sizes, encoder_state, mix_state, head_state, len(indices))
