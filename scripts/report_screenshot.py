#!/usr/bin/env python3
"""Render a car-select HTML report in headless Chromium and save a screenshot (docs/report.png).

    python scripts/report_screenshot.py                     # a synthetic demo report -> docs/report.png
    python scripts/report_screenshot.py --html out/report.html -o docs/report.png

Drives the system Chromium (Debian's `chromium`, /usr/bin/chromium; $CHROMIUM overrides) over the
DevTools protocol with the `websocket-client` package; nothing is downloaded. tests/report/test_report_html.py
uses the same `HeadlessChromium` class to check the page loads without console errors.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-allow-origins=*",
]


def find_chromium() -> str | None:
    """$CHROMIUM, /usr/bin/chromium, or a chromium/chrome on PATH; None if there is none."""
    env = os.environ.get("CHROMIUM")
    if env and os.access(env, os.X_OK):
        return env
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class HeadlessChromium:
    """A headless Chromium with one page, driven over the DevTools protocol (websocket-client)."""

    def __init__(
        self, executable: str | None = None, width: int = 1280, height: int = 900, timeout: float = 60.0
    ):
        import websocket  # websocket-client

        self._websocket = websocket
        self.executable = executable or find_chromium()
        if not self.executable:
            raise RuntimeError("no chromium found (install Debian's `chromium` or set $CHROMIUM)")
        self.timeout = timeout
        self.width, self.height = width, height
        self.events: list[dict] = []
        self._next_id = 0
        self._profile = tempfile.mkdtemp(prefix="car-report-chromium-")
        self._stderr = open(os.path.join(self._profile, "chromium-stderr.log"), "wb")
        self.proc = subprocess.Popen(
            [
                self.executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        try:
            port = self._wait_port()
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
            ws_url = None
            deadline = time.monotonic() + timeout
            while ws_url is None:
                with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                    targets = json.load(r)
                pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
                if pages:
                    ws_url = pages[0]["webSocketDebuggerUrl"]
                elif time.monotonic() > deadline:
                    raise RuntimeError("chromium started but shows no page target")
                else:
                    time.sleep(0.1)
            self.ws = websocket.create_connection(
                ws_url, timeout=timeout, suppress_origin=True, http_no_proxy=["127.0.0.1"]
            )
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        except BaseException:
            self.close()
            raise

    # -- plumbing -------------------------------------------------------------------------------
    def _wait_port(self) -> int:
        marker = os.path.join(self._profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"chromium exited with status {self.proc.returncode}: {self.stderr_tail()}"
                )
            try:
                with open(marker) as f:
                    first = f.readline().strip()
                if first:
                    return int(first)
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"chromium did not open its DevTools port in {self.timeout:.0f}s: {self.stderr_tail()}"
        )

    def stderr_tail(self, chars: int = 2000) -> str:
        try:
            self._stderr.flush()
            return Path(self._stderr.name).read_bytes()[-chars:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _recv(self, deadline: float) -> dict:
        self.ws.settimeout(max(deadline - time.monotonic(), 0.01))
        return json.loads(self.ws.recv())

    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        self._next_id += 1
        mid = self._next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._recv(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float | None = None) -> dict:
        for ev in self.events:
            if ev["method"] == method and not ev.get("_seen"):
                ev["_seen"] = True
                return ev
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._recv(deadline)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    msg["_seen"] = True
                    return msg

    def pump(self, seconds: float) -> None:
        """Collect events for a while (late console messages)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                msg = self._recv(deadline)
            except self._websocket.WebSocketTimeoutException:
                break
            if "method" in msg:
                self.events.append(msg)

    # -- page ----------------------------------------------------------------------------------
    def open(self, path_or_url: str | os.PathLike) -> None:
        url = str(path_or_url)
        if "://" not in url:
            url = Path(url).resolve().as_uri()
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        res = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS exception: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error/assert calls and browser log errors (CSP, failed loads)."""
        out = []
        for ev in self.events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                out.append(f"console.{p['type']}: {args}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".strip())
        return out

    def mouse_move(self, x: float, y: float) -> None:
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def screenshot(self, path: str | os.PathLike, full_page: bool = True) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            m = self.send("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m.get("contentSize")
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": self.width, "height": float(size["height"]), "scale": 1},
            )
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
        return out

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                try:
                    self.ws.send(json.dumps({"id": 10**9, "method": "Browser.close", "params": {}}))
                except Exception:
                    pass
                self.ws.close()
                self.ws = None
        finally:
            if self.proc.poll() is None:
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self._stderr.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "HeadlessChromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def demo_data(n: int = 3000, k: int = 24, n1: int = 60, seed: int = 0):
    """A synthetic ReportData: k Gaussian clusters in a 20-d 'PCA' space, top-n1 + 1 per cluster selected."""
    import numpy as np

    from car_select.report import ReportData
    from car_select.selection.baselines import compare_with_random

    rng = np.random.default_rng(seed)
    d = 20
    centers = rng.normal(size=(k, d)) * 2.2
    clusters = rng.integers(0, k, size=n)
    reduced = centers[clusters] + rng.normal(size=(n, d)) * np.linspace(1.5, 0.5, d)
    scores = np.clip(rng.normal(0.55, 0.12, size=n) + 0.08 * np.sin(clusters), 0, 1)
    order = np.argsort(-scores, kind="stable")
    selected = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    for i in order[:n1]:
        selected[i], reasons[i] = True, "top_n1"
    for c in range(k):
        members = np.flatnonzero(clusters == c)
        if len(members) == 0:
            continue
        best = members[np.argmax(scores[members])]
        if not selected[best]:
            selected[best], reasons[best] = True, "cluster_top"
    verbs = ["Explain", "Write", "Summarize", "Translate", "List", "Classify", "Rewrite", "Describe"]
    topics = [
        "photosynthesis",
        "a haiku about autumn",
        "the French revolution",
        "binary search",
        "a cover letter",
        "the water cycle",
        "prime numbers",
        "a product review",
    ]
    instructions = [
        f"{verbs[c % len(verbs)]} {topics[(c // len(verbs) + i) % len(topics)]} (#{i})"
        for i, c in enumerate(clusters)
    ]
    summary = {
        "input": "demo/alpaca-like.jsonl",
        "scorer": "car-select default scorer",
        "records_read": n + 17,
        "duplicates_dropped": 17,
        "k": k,
        "pca_components": d,
        "pca_variance_explained": 0.951,
        "selected": int(selected.sum()),
        "stage_seconds": {"read": 0.4, "score": 31.2, "embed": 12.5, "cluster": 2.1, "select": 0.01},
    }
    # the section a run adds: the selection beside random subsets and the naive baselines
    words = rng.integers(5, 400, size=n)
    summary["against_random"] = compare_with_random(scores, clusters, reduced, words, np.flatnonzero(selected))
    return ReportData(
        scores=scores,
        clusters=clusters,
        selected=selected,
        reasons=reasons,
        instructions=instructions,
        reduced=reduced,
        summary=summary,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--html", help="an existing report.html (default: render a synthetic demo report)")
    ap.add_argument("-o", "--output", default="docs/report.png")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument(
        "--demo-records", type=int, default=3000, help="size of the synthetic demo (default 3000)"
    )
    ap.add_argument(
        "--viewport-only", action="store_true", help="capture the first screen, not the whole page"
    )
    args = ap.parse_args(argv)

    tmpdir = None
    html_path = args.html
    if not html_path:
        from car_select.report import write_report

        tmpdir = tempfile.mkdtemp(prefix="car-report-")
        html_path = os.path.join(tmpdir, "report.html")
        n = args.demo_records
        write_report(html_path, demo_data(n=n, k=max(2, int((n / 2) ** 0.5)), n1=max(1, n // 50)))
    try:
        with HeadlessChromium(width=args.width, height=args.height) as b:
            b.open(html_path)
            b.wait_for("document.body.dataset.mapPoints")
            b.pump(0.3)
            errors = b.console_errors()
            out = b.screenshot(args.output, full_page=not args.viewport_only)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    for e in errors:
        print(f"console error: {e}", file=sys.stderr)
    print(out)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
