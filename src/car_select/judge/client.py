"""An OpenAI-compatible chat-completions client (vLLM, llama.cpp server, Ollama, hosted APIs) over httpx.

`ask` sends one prompt and returns the reply's text and its token count. A 429, a 5xx, a timeout
or a dropped connection is retried with exponential backoff (doubling from `backoff` seconds, with
jitter, at most `max_backoff`; a Retry-After header of up to `max_backoff` seconds is honoured); any
other HTTP error (a bad key, an unknown model) is the user's to fix and stops the run at once.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import httpx

from ..errors import CarSelectError

RETRIED_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EndpointGaveUp(Exception):
    """Retries exhausted on one request (the record counts as failed; the run goes on)."""


def chat_url(endpoint: str) -> str:
    """The chat-completions URL of an endpoint given as its base (`http://host:8000/v1`) or in full."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/chat/completions") else f"{endpoint}/chat/completions"


@dataclass
class Reply:
    text: str
    tokens: int  # prompt + completion tokens, as the endpoint reported them (0 when it did not)


class ChatClient:
    def __init__(self, endpoint: str, model: str, api_key: str | None = None, *, timeout: float = 60.0,
                 max_retries: int = 5, backoff: float = 1.0, max_backoff: float = 60.0, temperature: float = 0.0,
                 max_tokens: int = 128, seed: int = 0):
        if not endpoint.startswith(("http://", "https://")):
            raise CarSelectError(f"--endpoint must be an http:// or https:// URL, got {endpoint!r}")
        self.url = chat_url(endpoint)
        self.model = model
        self.max_retries = max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.temperature, self.max_tokens = temperature, max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), headers=headers,
                                  limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self._sent_lock = threading.Lock()
        self.sent = 0  # requests sent, retries included

    def settings(self) -> dict:
        """What changes a reply besides the prompt (part of the ratings cache key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def check_reachable(self) -> None:
        """A one-line error when nothing answers at the endpoint (any HTTP answer counts as reachable)."""
        try:
            self._http.get(self.url.removesuffix("/chat/completions") + "/models", timeout=10)
        except httpx.HTTPError as e:
            raise CarSelectError(f"--endpoint {self.url}: cannot reach it: {_why(e)}") from None

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = None
        if retry_after:
            try:
                delay = min(float(retry_after), self.max_backoff)
            except ValueError:
                delay = None
        if delay is None:
            with self._random_lock:
                jitter = self._random.uniform(0.5, 1.0)
            delay = min(self.backoff * 2 ** attempt, self.max_backoff) * jitter
        time.sleep(delay)

    def ask(self, system: str, prompt: str) -> Reply:
        body = {"model": self.model, "messages": [{"role": "system", "content": system},
                                                  {"role": "user", "content": prompt}],
                "temperature": self.temperature, "max_tokens": self.max_tokens}
        last = ""
        for attempt in range(self.max_retries + 1):
            with self._sent_lock:
                self.sent += 1
            retry_after = None
            try:
                response = self._http.post(self.url, json=body)
            except httpx.TimeoutException:
                last = "timed out"
            except httpx.TransportError as e:
                last = _why(e)
            else:
                if response.status_code == 200:
                    return _reply(response)
                if response.status_code not in RETRIED_STATUS:
                    raise CarSelectError(f"--endpoint {self.url}: HTTP {response.status_code} for model "
                                         f"{self.model!r}: {_snippet(response.text)}")
                last, retry_after = f"HTTP {response.status_code}", response.headers.get("retry-after")
            if attempt < self.max_retries:
                self._wait(attempt, retry_after)
        raise EndpointGaveUp(f"{last} after {self.max_retries + 1} tries")

    def close(self) -> None:
        self._http.close()


def _reply(response: httpx.Response) -> Reply:
    """The text of a 200 answer; a body that is not a chat completion reads as an empty reply
    (unparsable, so asked again), not as an error that stops the run."""
    try:
        data = response.json()
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Reply("", 0)
    usage = data.get("usage") if isinstance(data, dict) else None
    tokens = usage.get("total_tokens", 0) if isinstance(usage, dict) else 0
    return Reply(text if isinstance(text, str) else "", int(tokens) if isinstance(tokens, (int, float)) else 0)


def _snippet(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _why(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return " ".join(text.split())
