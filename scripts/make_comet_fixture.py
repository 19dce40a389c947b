"""Build tests/scoring/data/comet_fixture/: a tiny IQS-shaped checkpoint written by the real COMET.

Why: car_select.scoring.official loads the paper's IQS, a COMET / PyTorch-Lightning checkpoint. Testing
that loader only on checkpoints our own writer makes would test our reading of COMET against itself.
This script has Unbabel's COMET (unbabel-comet) and Lightning train a tiny model for a few steps and
save it their way, then records the scores COMET's own `predict` gives a few texts; the test
(tests/scoring/test_official_checkpoint.py) loads the fixture with car-select and must reproduce them.

The model is the CaR IQS layout (IronBeliever/CaR, Ranking/configs/models/instruction_score.yaml):
class_identifier `instruction_metric`, a COMET RegressionMetric that reads only `src` and feeds the
pooled sentence embedding alone to its feed-forward; encoder_model XLM-RoBERTa, pool avg, layer mix,
layer_transformation sparsemax, layer_norm False, dropout 0.1, Tanh. CaR's fork ships that class in its
own copy of COMET, which is not on PyPI, so `InstructionMetric` below re-states it on top of the stock
RegressionMetric and registers it under the same class_identifier. Only the sizes are shrunk: a random
2-layer, 32-wide XLM-R (no hub: its SentencePiece model is trained here on a few sentences) and a
[24, 16] head instead of xlm-roberta-large and [2048, 1024].

COMET pins transformers < 5 and numpy < 2, so it runs in a throwaway environment, never the project's:

    python3 -m venv /tmp/comet-venv
    /tmp/comet-venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    /tmp/comet-venv/bin/pip install unbabel-comet==2.2.7 sentencepiece==0.2.0 "setuptools<81"
    # (transformers 4.57, lightning 2.6; sentencepiece 0.2.0 because the newest needs protobuf 5, COMET pins < 5;
    #  setuptools < 81 for the pkg_resources that torchmetrics 0.10 and COMET import)
    /tmp/comet-venv/bin/python scripts/make_comet_fixture.py   # from the repository root

(Any CPU build of torch does; install it before unbabel-comet so pip does not pull a CUDA one.)
It rewrites the fixture folder in place; the scores depend on the torch/transformers/COMET versions only
through float rounding, and the versions used are recorded in expected_scores.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "scoring" / "data" / "comet_fixture"
ENCODER_DIR = "encoder"  # hparams' pretrained_model: a folder name, resolved next to hparams.yaml

# Texts COMET scores for the fixture, in CaR's IQS input format (split_IQS.py builds
# "Instruction: ... Input: ... Response: ..."). One is longer than COMET's 510-token truncation, one has
# characters the tiny vocabulary lacks (<unk>), one has text NFKC normalisation changes.
TEXTS = [
    "Instruction: Give three tips for staying healthy. Input:  Response: Eat well, sleep enough and exercise.",
    "Instruction: Translate 'good morning' to French. Input:  Response: Bonjour.",
    "Instruction: Name a colour. Input: ｆｕｌｌ-width ＡＢＣ and ümlaut — 東京 🙂 Response: Blue.",
    "Instruction: Write a long story. Input: about a cat " + "and a dog who play in the garden " * 60
    + "Response: Once upon a time there was a cat.",
]

# SentencePiece training text: enough English for a ~180-piece unigram vocabulary.
CORPUS = [
    "Give three tips for staying healthy.",
    "Eat a balanced diet and make sure to include plenty of fruits and vegetables.",
    "Exercise regularly to keep your body active and strong.",
    "Get enough sleep and maintain a consistent sleep schedule.",
    "Translate the following sentence into French.",
    "Write a short story about a cat and a dog who play in the garden.",
    "Once upon a time there was a little cat who lived in a big house.",
    "Explain why the sky is blue in simple words.",
    "The response should be helpful, honest and harmless.",
    "Instruction: Summarise the paragraph. Input: The weather was cold. Response: It was cold.",
    "Classify the sentiment of the review as positive or negative.",
    "List five countries in Europe and their capital cities.",
    "What is the capital of France? The capital of France is Paris.",
    "Rewrite the sentence in the passive voice.",
    "Generate a creative name for a new coffee shop.",
    "Describe the process of photosynthesis in plants.",
    "Calculate the area of a circle with a radius of three meters.",
    "Provide an example of a renewable energy source such as wind or solar power.",
] * 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture folder (replaced)")
    p.add_argument("--seed", type=int, default=12)  # comet-train's default seed
    return p.parse_args(argv)


def train_sentencepiece(path: Path) -> None:
    """A tiny unigram model with XLM-R's special ids (unk 0, bos 1, eos 2, no pad): what
    XLMRobertaTokenizer's fairseq offset and the fast-tokenizer converter expect."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=buf, vocab_size=180, model_type="unigram", hard_vocab_limit=False,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(buf.getvalue())


def build_encoder(folder: Path, seed: int) -> None:
    """A local stand-in for xlm-roberta-large: tokenizer files, config and random weights."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        spm_path = Path(tmp) / "sentencepiece.bpe.model"
        train_sentencepiece(spm_path)
        tokenizer = XLMRobertaTokenizerFast(vocab_file=str(spm_path))
        tokenizer.save_pretrained(folder)  # tokenizer.json plus the sentencepiece model, as on the hub
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=48, max_position_embeddings=514, type_vocab_size=1,
        bos_token_id=0, pad_token_id=1, eos_token_id=2,
        initializer_range=0.3,  # far from the hub's 0.02, so different texts get clearly different scores
    )
    torch.manual_seed(seed)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(folder)  # COMET loads it to train


def instruction_metric_class():
    """CaR's InstructionMetric: a RegressionMetric over `src` alone, estimator on the bare sentence
    embedding (in_dim = hidden size, not RegressionMetric's 6 x hidden)."""
    import pandas as pd
    import torch
    from comet.models import str2model
    from comet.models.regression.regression_metric import RegressionMetric
    from comet.models.utils import Prediction, Target
    from comet.modules import FeedForward

    class InstructionMetric(RegressionMetric):
        def __init__(self, nr_frozen_epochs=0.3, keep_embeddings_frozen=True, optimizer="AdamW",
                     warmup_steps=0, encoder_learning_rate=1e-06, learning_rate=1.5e-05,
                     layerwise_decay=0.95, encoder_model="XLM-RoBERTa", pretrained_model="xlm-roberta-large",
                     pool="avg", layer="mix", layer_transformation="softmax", layer_norm=True, loss="mse",
                     dropout=0.1, batch_size=4, train_data=None, validation_data=None,
                     hidden_sizes=[2048, 1024], activations="Tanh", final_activation=None,
                     load_pretrained_weights=True, local_files_only=False):
            # Skip RegressionMetric.__init__ (it builds the 6 x hidden estimator). super(), not
            # CometModel.__init__: Lightning's save_hyperparameters finds init args via the __class__ cell.
            super(RegressionMetric, self).__init__(
                nr_frozen_epochs=nr_frozen_epochs, keep_embeddings_frozen=keep_embeddings_frozen,
                optimizer=optimizer, warmup_steps=warmup_steps, encoder_learning_rate=encoder_learning_rate,
                learning_rate=learning_rate, layerwise_decay=layerwise_decay, encoder_model=encoder_model,
                pretrained_model=pretrained_model, pool=pool, layer=layer,
                layer_transformation=layer_transformation, layer_norm=layer_norm, loss=loss, dropout=dropout,
                batch_size=batch_size, train_data=train_data, validation_data=validation_data,
                class_identifier="instruction_metric", load_pretrained_weights=load_pretrained_weights,
                local_files_only=local_files_only,
            )
            self.save_hyperparameters()
            self.estimator = FeedForward(
                in_dim=self.encoder.output_units, hidden_sizes=self.hparams.hidden_sizes,
                activations=self.hparams.activations, dropout=self.hparams.dropout,
                final_activation=self.hparams.final_activation, out_dim=1,
            )

        def requires_references(self):
            return False

        def prepare_sample(self, sample, stage="train"):
            src = self.encoder.prepare_sample([str(s["src"]) for s in sample])
            inputs = {"src_" + k: v for k, v in src.items()}
            if stage == "predict":
                return inputs
            return inputs, Target(score=torch.tensor([float(s["score"]) for s in sample], dtype=torch.float))

        def forward(self, src_input_ids, src_attention_mask, **kwargs):
            sentemb = self.get_sentence_embedding(src_input_ids, src_attention_mask)
            return Prediction(score=self.estimator(sentemb).view(-1))

        def read_training_data(self, path):
            df = pd.read_csv(path)[["src", "score"]]
            df["src"] = df["src"].astype(str)
            df["score"] = df["score"].astype("float16")
            return df.to_dict("records")

        read_validation_data = read_training_data

    str2model["instruction_metric"] = InstructionMetric  # so comet.load_from_checkpoint finds it
    return InstructionMetric


def write_csv(path: Path, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["src", "score"])
        w.writerows(rows)


def train(workdir: Path, seed: int) -> tuple[Path, Path]:
    """comet-train's recipe (cli/train.py) at toy size: returns (best .ckpt, hparams.yaml)."""
    import torch
    from pytorch_lightning import Trainer, seed_everything
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    seed_everything(seed)
    data = [(f"Instruction: {s} Input:  Response: {CORPUS[(i + 3) % 18]}", round((i * 7 % 11) / 10, 1))
            for i, s in enumerate(CORPUS[:18])]
    write_csv(workdir / "train.csv", data[:12])
    write_csv(workdir / "valid.csv", data[12:])
    model = instruction_metric_class()(
        nr_frozen_epochs=0.3, keep_embeddings_frozen=True, optimizer="AdamW",
        encoder_learning_rate=1.0e-04, learning_rate=1.0e-03,  # CaR: 1e-6 / 1.5e-5; larger so a few steps move
        layerwise_decay=0.95, encoder_model="XLM-RoBERTa", pretrained_model=ENCODER_DIR,
        pool="avg", layer="mix", layer_transformation="sparsemax", layer_norm=False, loss="mse",
        dropout=0.1, batch_size=4, train_data=["train.csv"], validation_data=["valid.csv"],
        hidden_sizes=[24, 16], activations="Tanh",
    )
    with torch.no_grad():  # start from a mix that sparsemax makes sparse (a weight of 0), as trained ones are
        for p, w in zip(model.layerwise_attention.scalar_parameters, [-0.5, 0.6, 0.4]):
            p.fill_(w)
        model.layerwise_attention.gamma.fill_(1.3)
    checkpoint = ModelCheckpoint(  # CaR's IQS is named epoch=3-step=1016-val_kendall=0.600.ckpt
        filename="{epoch}-{step}-{val_kendall:.3f}", monitor="val_kendall", mode="max", save_top_k=1,
        save_weights_only=True, verbose=False,
    )
    early = EarlyStopping(monitor="val_kendall", mode="max", patience=1)
    trainer = Trainer(
        accelerator="cpu", devices=1, max_epochs=2, precision=32, gradient_clip_val=1.0,  # CaR: GPU, fp16 AMP
        accumulate_grad_batches=1, num_sanity_val_steps=0, default_root_dir=str(workdir),
        callbacks=[early, checkpoint], enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model)
    ckpt = Path(checkpoint.best_model_path)
    hparams = Path(trainer.logger.log_dir) / "hparams.yaml"
    return ckpt, hparams


def score_with_comet(model_dir: Path) -> dict:
    """COMET's own load_from_checkpoint + predict on TEXTS (batches of 2, so padding is exercised)."""
    import torch
    import transformers
    from comet import load_from_checkpoint

    instruction_metric_class()
    cwd = os.getcwd()
    os.chdir(model_dir)  # pretrained_model is the folder name "encoder", resolved from here
    try:
        model = load_from_checkpoint(str(Path("checkpoints") / "model.ckpt"), local_files_only=True)
        model.eval()
        out = model.predict([{"src": t} for t in TEXTS], batch_size=2, gpus=0, progress_bar=False,
                            num_workers=0)
        ids = [model.encoder.prepare_sample([t])["input_ids"][0].tolist() for t in TEXTS]
    finally:
        os.chdir(cwd)
    from importlib.metadata import version

    return {
        "texts": TEXTS,
        "scores": [float(s) for s in out.scores],
        "input_ids": ids,  # COMET's tokenisation, to tell a tokenizer mismatch from a model one
        "made_with": {"unbabel-comet": version("unbabel-comet"), "torch": torch.__version__,
                      "transformers": transformers.__version__,
                      "pytorch-lightning": version("pytorch-lightning")},
        "_made_by": "scripts/make_comet_fixture.py",
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_encoder(work / ENCODER_DIR, args.seed)
        cwd = os.getcwd()
        os.chdir(work)  # the relative data and encoder paths the hparams record resolve from here
        try:
            ckpt, hparams = train(work, args.seed)
        finally:
            os.chdir(cwd)

        if out.exists():
            shutil.rmtree(out)
        (out / "checkpoints").mkdir(parents=True)
        shutil.copy(ckpt, out / "checkpoints" / "model.ckpt")  # the name COMET's released models use
        shutil.copy(hparams, out / "hparams.yaml")
        # The encoder's config and tokenizer only: its weights are inside the checkpoint, and COMET
        # itself builds the encoder from the config when loading one (load_pretrained_weights=False).
        (out / ENCODER_DIR).mkdir()
        for f in sorted((work / ENCODER_DIR).iterdir()):
            if f.suffix not in (".safetensors", ".bin"):
                shutil.copy(f, out / ENCODER_DIR / f.name)

    expected = score_with_comet(out)
    (out / "expected_scores.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1024:.0f} KiB); COMET scores: {expected['scores']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
