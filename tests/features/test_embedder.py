"""Config.embedder is honoured: a sentence-transformers model with its own pooling, no remote code,
validated ids."""

from __future__ import annotations

import numpy as np
import pytest

from car_select import Config
from car_select.errors import CarSelectError
from car_select.records import Record


def records(n: int = 24) -> list[Record]:
    return [Record(instruction=f"Tell me about topic {i}.", output=f"Topic {i} is " + "interesting " * (i % 5 + 1))
            for i in range(n)]


@pytest.mark.parametrize("bad", ["hf://../etc", "hf://owner", "hf://a b/c", "not an id", "./missing-folder"])
def test_bad_embedder_ids_are_one_line_errors(bad):
    with pytest.raises(CarSelectError) as err:
        Config(embedder=bad).validate()
    assert str(err.value).startswith("embedder") and "\n" not in str(err.value)


def test_embedder_is_used_even_with_a_minilm_scorer(tmp_path, random_head_scorer_dir):
    from sentence_transformers import SentenceTransformer

    from car_select.encoding.models import resolve_encoder_path
    from car_select.pipeline import select

    recs = records()
    base = Config(n1=4, scorer=random_head_scorer_dir, cache_dir=str(tmp_path))
    one_pass = select(recs, base)
    with_embedder = select(recs, base.replace(embedder="all-MiniLM-L6-v2"))
    assert one_pass.encoder_passes == 1 and with_embedder.encoder_passes == 2
    np.testing.assert_array_equal(one_pass.scores, with_embedder.scores)  # the scorer's scores, unchanged
    # the clustering embedding is what sentence-transformers itself gives (its pooling + normalisation)
    from car_select.features import FeatureExtractor, segment_records

    ex = FeatureExtractor(None, base.replace(embedder="all-MiniLM-L6-v2"))
    feats = ex.compute(segment_records(recs[:3]))
    st = SentenceTransformer(resolve_encoder_path("all-MiniLM-L6-v2"), device="cpu", trust_remote_code=False)
    want = st.encode(segment_records(recs[:3]).texts, convert_to_numpy=True)
    np.testing.assert_allclose(feats["embeddings"], want, atol=1e-5)
    assert np.allclose(np.linalg.norm(want, axis=1), 1.0, atol=1e-4)  # its Normalize module ran
    assert ex.namespace() != FeatureExtractor(None, base).namespace()


def test_an_embedders_embedding_is_the_same_bits_alone_and_among_other_texts():
    """Texts are encoded in groups of one token count: no padding, so no dependence on the neighbours
    (with encode's own padded batches of 64, 10 of these 30 embeddings changed in their last bits)."""
    from car_select.embedder import SentenceEmbedder

    embedder = SentenceEmbedder("all-MiniLM-L6-v2").eval_mode()
    rng = np.random.default_rng(0)
    words = ["river", "leaf", "number", "sun", "because", "quickly", "tea", "volcano", "chess"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 100)))) for _ in range(130)]
    _, alone, counts = embedder.score_and_embed(texts[:30])
    _, inside, _ = embedder.score_and_embed(texts[30:80] + texts[:30][::-1] + texts[80:])
    assert np.array_equal(alone.view(np.uint32), inside[50:80][::-1].view(np.uint32))
    assert counts.tolist() == [len(embedder.model.tokenizer(t)["input_ids"]) for t in texts[:30]]
