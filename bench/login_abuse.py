"""An annotator's next-item latency while clients guess passwords (issue 16: goal p99 < 200 ms).

One annotator calls POST /gradio_api/run/pairwise_submit (store a vote, get the next item) in a
loop, as a browser tab does, while `--guessers` threads in another process POST /login with wrong passwords for real
usernames as fast as the server answers. Three phases of `--seconds` each on a fresh app: no
guessers (baseline); guessers with the shipped limits (10 failures per user, 50 per address in
15 minutes: most guesses are refused with 429 before any hash is checked); guessers with the limits
lifted, so every guess costs a full argon2 check in the worker thread (what the event loop has to
survive if an attacker spreads guesses over many addresses).

    python bench/login_abuse.py [--guessers 10] [--seconds 20]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
TOKEN_INDEX = 3  # pairwise outputs: prompt, left, right, token, counter, choice, skip reason
PASSWORD = "bench-password"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def guess_crowd(base: str, guessers: int, names: list[str], stop, out) -> None:
    """`guessers` threads posting wrong passwords until `stop`; puts the count of each status code on `out`."""
    import httpx

    answers: Counter = Counter()

    def guess(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            n = 0
            while not stop.is_set():
                reply = http.post("/login", data={"username": names[(i + n) % len(names)], "password": f"guess-{n}"})
                answers[reply.status_code] += 1
                n += 1

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(guessers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(answers)


def phase(url: str, config, *, guessers: int, seconds: float, names: list[str]) -> str:

    from feedback_app.app import launch
    from feedback_app.http_client import AppClient, free_port
    from storage.db import dispose_engines

    port = free_port()
    demo, _ = launch(url, replace(config, host="127.0.0.1", port=port), block=False, generate=False)
    base = f"http://127.0.0.1:{port}"
    stop = multiprocessing.get_context("spawn").Event()
    answers = multiprocessing.get_context("spawn").Queue()
    crowd = multiprocessing.get_context("spawn").Process(
        target=guess_crowd, args=(base, guessers, names, stop, answers)
    )

    latencies: list[float] = []
    try:
        with AppClient(base, "ann0", PASSWORD, timeout=60) as tab:
            token = tab.call("pairwise_next")[TOKEN_INDEX]
            if guessers:
                crowd.start()
                time.sleep(3.0)  # the crowd has imported httpx and is guessing
            ends = time.perf_counter() + seconds
            while time.perf_counter() < ends and token:
                started = time.perf_counter()
                reply = tab.post("pairwise_submit", token, "A (left)")
                latencies.append(time.perf_counter() - started)
                reply.raise_for_status()
                token = reply.json()["data"][TOKEN_INDEX]
            stop.set()
            counts = answers.get() if guessers else Counter()
            if guessers:
                crowd.join()
    finally:
        demo.close()
        dispose_engines()
    guesses = sum(counts.values())
    refused = counts.get(429, 0)
    return (
        f"{len(latencies)} submits, p50 {percentile(latencies, 0.5):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms | {guesses} guesses ({guesses / seconds:.1f}/s), "
        f"{counts.get(400, 0)} checked and wrong, {refused} refused unchecked (429), "
        f"{counts.get(200, 0)} accepted"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guessers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from feedback_app.config import AppConfig
    from storage.migrate import upgrade
    from tests.helpers import seed_store

    names = [f"ann{i}" for i in range(8)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    shipped = AppConfig()
    for label, guessers, config in [
        ("no guessers", 0, shipped),
        (f"{args.guessers} guessers, shipped limits", args.guessers, shipped),
        (
            f"{args.guessers} guessers, limits lifted",
            args.guessers,
            replace(shipped, login_failures_per_user=10**9, login_failures_per_address=10**9),
        ),
    ]:
        workdir = Path(tempfile.mkdtemp(prefix="login_abuse_"))
        url = f"sqlite:///{workdir / 'store.db'}"
        upgrade(url)
        seed_store(
            url, users=names, password=PASSWORD, prompts=4000, prompt_text="bench prompt {p}", enqueue=["pairwise"]
        )
        print(f"{label}: {phase(url, config, guessers=guessers, seconds=args.seconds, names=names)}", flush=True)


if __name__ == "__main__":
    main()
