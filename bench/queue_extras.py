"""What gold items, swap checks and priority ordering cost on the serving path (`storage.queue.next_item`).

A fresh SQLite store: N open pairwise items with random priorities, G gold items, and one
annotator who has already judged J pairs. Each call serves one item (and claims it, or
creates a swap check) in its own transaction, which is rolled back so every call sees the
same store. Reports the median and p99 per call for: no extras, a gold draw every time,
a swap-check draw every time, and the configured mix (5% + 5%); and for the done / skipped /
remaining counter (`progress`) that the app returns with every item.

    python bench/queue_extras.py --items 20000 --gold 200 --judged 1000 --calls 300
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable

from sqlalchemy import insert
from sqlmodel import Session

from storage.db import get_engine, session_scope
from storage.migrate import upgrade
from storage.models import AnnotationItem, Generation, Judgment, ModelVersion, Prompt, User, utcnow
from storage.queue import GOLD, Extras, next_item, progress


def build(url: str, *, items: int, gold: int, judged: int) -> int:
    rng = random.Random(0)
    now = utcnow()
    with session_scope(url) as session:
        version = ModelVersion(name="v0", base_model="tiny", artifact_path="/x", status="ready")
        user = User(username="ann", role="annotator")
        session.add_all([version, user])
        session.flush()
        n = items + gold
        session.execute(
            insert(Prompt),
            [{"text": f"p{i}", "content_hash": f"{i:064d}", "tags": [], "created_at": now} for i in range(n)],
        )
        session.execute(
            insert(Generation),
            [
                {
                    "prompt_id": i // 2 + 1,
                    "model_version_id": version.id,
                    "text": f"g{i}",
                    "text_hash": f"{i:064d}",
                    "params": {},
                    "created_at": now,
                }
                for i in range(2 * n)
            ],
        )
        session.execute(
            insert(AnnotationItem),
            [
                {
                    "kind": "pairwise",
                    "prompt_id": i + 1,
                    "generation_ids": [2 * i + 1, 2 * i + 2],
                    "overlap": 2,
                    "purpose": GOLD if i >= items else "train",
                    "gold_answer": {"choice": "a"} if i >= items else None,
                    "priority": rng.random(),
                    "judged_count": 1 if i < judged else 0,
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
        session.execute(
            insert(Judgment),
            [
                {
                    "kind": "pairwise",
                    "user_id": user.id,
                    "prompt_id": i + 1,
                    "item_id": i + 1,
                    "generation_ids": [2 * i + 1, 2 * i + 2],
                    "payload": {"choice": "a"},
                    "shown_order": [2 * i + 2, 2 * i + 1],
                    "duration_ms": 1000,
                    "client_key": f"k{i}",
                    "source": "app",
                    "created_at": now,
                }
                for i in range(judged)
            ],
        )
        return user.id


def timed(url: str, call: Callable[[Session], object], calls: int) -> tuple[float, float]:
    engine = get_engine(url)
    times = []
    for _ in range(calls):
        with Session(engine) as session:
            start = time.perf_counter()
            result = call(session)
            times.append(time.perf_counter() - start)
            assert result is not None
            session.rollback()
    times.sort()
    return statistics.median(times) * 1000, times[int(0.99 * (len(times) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--gold", type=int, default=200)
    parser.add_argument("--judged", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    user_id = build(url, items=args.items, gold=args.gold, judged=args.judged)
    print(
        f"{args.items} open pairwise items, {args.gold} gold, {args.judged} judged by the user; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| serving | median | p99 |\n|---|---|---|")
    for name, extras in [
        ("ordinary only (ORDER BY priority)", Extras()),
        ("gold drawn every call", Extras(gold_rate=1.0, rng=random.Random(0))),
        ("swap check drawn every call (creates the item)", Extras(swap_rate=1.0, rng=random.Random(0))),
        ("configured mix (5% gold, 5% swap)", Extras(gold_rate=0.05, swap_rate=0.05, rng=random.Random(0))),
    ]:
        median, p99 = timed(
            url,
            lambda session, extras=extras: next_item(session, user_id=user_id, kind="pairwise", extras=extras),
            args.calls,
        )
        print(f"| {name} | {median:.2f} ms | {p99:.2f} ms |")
    median, p99 = timed(url, lambda session: progress(session, user_id=user_id, kind="pairwise"), args.calls)
    print(f"| counter (`progress`: done / skipped / remaining) | {median:.2f} ms | {p99:.2f} ms |")


if __name__ == "__main__":
    main()
