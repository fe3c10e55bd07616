"""Load on the annotation app through its real HTTP API: simulated annotators submitting pairwise votes.

16 annotators (4 processes x 4 threads) log in with POST /login and then call
POST /gradio_api/run/pairwise_submit with a session hash per annotator, as a
browser tab sends (raw HTTP; the submit skips Gradio's queue), each call storing
a judgment and returning the next item. Every 20th submit is sent twice with the same view token, as a
double click or retry would. Afterwards the store is checked: one judgment
per acknowledged submit (0 lost), no repeated (user, item) and no repeated
client key (0 duplicated).

    python bench/app_load.py [--annotators 16] [--submits 500] [--processes 4] [--bare]

`--bare` serves the same two endpoints from a bare Gradio app instead (`queue=False`, Gradio's own
login, a handler that inserts one row into a SQLite file and returns a new token): the anchor for
what Gradio's route costs on this machine, run with the same clients.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
TOKEN_INDEX = 3  # pairwise outputs: prompt, left, right, token, counter, choice, skip reason
PASSWORD = "bench-password"


def annotate(base: str, username: str, submits: int, retry_every: int, out: list) -> None:
    from feedback_app.http_client import AppCallError, AppClient

    with AppClient(base, username, PASSWORD, timeout=30) as tab:  # one browser tab: its own Gradio session
        token = tab.call("pairwise_next")[TOKEN_INDEX]
        latencies, acknowledged, retries = [], 0, 0
        for i in range(submits):
            if not token:
                break
            started = time.perf_counter()
            reply = tab.post("pairwise_submit", token, "A (left)")
            latencies.append(time.perf_counter() - started)
            if reply.status_code != 200:
                raise AppCallError("pairwise_submit", reply)
            acknowledged += 1
            if i % retry_every == 0:
                tab.call("pairwise_submit", token, "A (left)")
                retries += 1
            token = reply.json()["data"][TOKEN_INDEX]
        out.append((latencies, acknowledged, retries))


def worker(base: str, usernames: list[str], submits: int, retry_every: int, start: mp.Event, results) -> None:
    out: list = []
    threads = [threading.Thread(target=annotate, args=(base, name, submits, retry_every, out)) for name in usernames]
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(out)


def bare_app(workdir: Path, port: int):
    """Gradio with a trivial SQLite handler: what a vote costs with none of the app's work."""
    import sqlite3
    import uuid

    import gradio as gr

    path = workdir / "bare.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE vote (token TEXT PRIMARY KEY, choice TEXT)")
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(path, isolation_level=None)
        return local.db

    def next_item():
        return ["prompt", "left", "right", uuid.uuid4().hex]

    def submit(token, choice):
        connection().execute("INSERT OR IGNORE INTO vote VALUES (?, ?)", (token, choice))
        return next_item()

    with gr.Blocks() as demo:
        token, choice = gr.Textbox(), gr.Textbox()
        shown = [gr.Textbox(), gr.Textbox(), gr.Textbox(), gr.Textbox()]
        gr.Button().click(next_item, None, shown, api_name="pairwise_next", queue=False)
        gr.Button().click(submit, [token, choice], shown, api_name="pairwise_submit", queue=False)
    demo.launch(server_name="127.0.0.1", server_port=port, auth=lambda user, password: True, prevent_thread_lock=True)
    return demo, path


def seed(url: str, annotators: int, submits: int) -> None:
    from tests.helpers import seed_store

    seed_store(
        url,
        users=[f"ann{i}" for i in range(annotators)],
        password=PASSWORD,
        prompts=submits,
        prompt_text="bench prompt {p}",
        enqueue=["pairwise"],
        overlap=annotators,
    )


def check_store(url: str) -> dict:
    from sqlalchemy import func
    from sqlmodel import select

    from storage.db import session_scope
    from storage.models import Judgment

    with session_scope(url) as session:
        rows = session.exec(select(func.count()).select_from(Judgment)).one()
        pairs = session.exec(
            select(func.count()).select_from(select(Judgment.user_id, Judgment.item_id).distinct().subquery())
        ).one()
        keys = session.exec(select(func.count(func.distinct(Judgment.client_key)))).one()
    return {"rows": rows, "distinct_user_item": pairs, "distinct_keys": keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--submits", type=int, default=500)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--retry-every", type=int, default=20)
    parser.add_argument("--bare", action="store_true", help="a bare Gradio app with a trivial SQLite handler")
    args = parser.parse_args()

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from feedback_app.app import launch
    from feedback_app.config import AppConfig
    from feedback_app.http_client import free_port
    from storage.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix="app_load_"))
    url = f"sqlite:///{workdir / 'store.db'}"
    upgrade(url)
    seed(url, args.annotators, args.submits)

    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    names = [f"ann{i}" for i in range(args.annotators)]
    groups = [names[i :: args.processes] for i in range(args.processes)]
    port = free_port()
    if args.bare:
        demo, bare_store = bare_app(workdir, port)
    else:
        demo, _ = launch(url, AppConfig(host="127.0.0.1", port=port), block=False, generate=False)
    base = f"http://127.0.0.1:{port}"
    procs = [
        ctx.Process(target=worker, args=(base, group, args.submits, args.retry_every, start, results))
        for group in groups
    ]
    for proc in procs:
        proc.start()
    time.sleep(3)  # let the workers import httpx before the clock starts
    began, server_cpu = time.perf_counter(), time.process_time()
    start.set()
    collected = [item for _ in procs for item in results.get()]
    elapsed, server_cpu = time.perf_counter() - began, time.process_time() - server_cpu
    for proc in procs:
        proc.join()
    demo.close()

    latencies = sorted(value for lat, _, _ in collected for value in lat)
    acknowledged = sum(a for _, a, _ in collected)
    retries = sum(r for _, _, r in collected)
    if args.bare:
        import sqlite3

        with sqlite3.connect(bare_store) as db:
            rows = db.execute("SELECT count(*) FROM vote").fetchone()[0]
        store = {"rows": rows, "distinct_user_item": rows, "distinct_keys": rows}
    else:
        store = check_store(url)
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    print("app:", "bare Gradio, trivial SQLite handler" if args.bare else "feedback_app")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"{args.annotators} annotators x {args.submits} submits over {args.processes} processes, "
        f"+{retries} duplicate sends (same view token)"
    )
    print(
        f"acknowledged submits: {acknowledged} in {elapsed:.1f} s -> {acknowledged / elapsed:.0f} judgments/s "
        f"({(acknowledged + retries) / elapsed:.0f} requests/s incl. duplicates)"
    )
    print(
        f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1] * 1000:.1f} ms, "
        f"mean {statistics.mean(latencies) * 1000:.1f} ms"
    )
    per_request = server_cpu / (acknowledged + retries) * 1000
    print(
        f"server process CPU: {server_cpu:.1f} s = {per_request:.2f} ms per request "
        f"(one dedicated core would serve about {1000 / per_request:.0f} requests/s); "
        f"load average at the end {os.getloadavg()[0]:.1f}"
    )
    lost = acknowledged - store["rows"]
    duplicated = store["rows"] - store["distinct_user_item"]
    print(
        f"store: {store['rows']} judgments, lost {lost}, duplicated {duplicated} "
        f"(distinct client keys {store['distinct_keys']})"
    )


if __name__ == "__main__":
    main()
