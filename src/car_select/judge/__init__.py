"""Rating records through an LLM judge (an OpenAI-compatible chat-completions endpoint).

prompts.py: the shipped rubrics and a user's prompt file; parse.py: a reply -> a number or None;
client.py: the HTTP client with retries; cache.py: ratings on disk, so no request is sent twice;
rate.py: sampling, concurrent rating and writing (`car-select rate`). Distilling the ratings into a
scorer lives in training/ratings.py (`car-select train-scorer --ratings`).
"""
