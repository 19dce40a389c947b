"""The encoder pass: every text through a Hugging Face encoder once, fast and in a stable layout.

- models.py       loading an encoder and its tokenizer (the bundled all-MiniLM-L6-v2 by name)
- tokenize.py     token ids per text (plain truncation, or a long text's start and end)
- batching.py     length-sorted batches under a token budget, padded per batch, run on a thread pool
- device.py       device and precision policy (bf16 where the hardware has it)
- fast_bert.py    the inference-only BERT-family forward (fused, pre-packed weights)
- settings.py     the encoder knobs (fast forward, CPU batch cap, workers) and their environment defaults
- fingerprints.py content hashes of model files (what the feature cache and the manifest key on)
"""
