"""How long annotator quality and agreement take on a store with many judgments.

Fills a fresh SQLite store with simulated pairwise judgments and ratings (bulk insert, one
transaction), then times annotator_report and dataset_agreement; then alpha on a continuous
interval table and a 200-draw Bradley–Terry fit of the same size.

    python bench/analytics_scale.py --judgments 100000
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from rlhf.quality.analytics import annotator_report, bradley_terry, dataset_agreement, krippendorff_alpha
from storage.db import get_engine, session_scope
from storage.migrate import upgrade
from storage.models import Generation, Judgment, Prompt, User, utcnow


def fill(url: str, judgments: int, annotators: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    now = utcnow()
    n_pairs = judgments // 6
    with get_engine(url).begin() as connection:
        connection.execute(insert(User), [{"username": f"ann{i}", "role": "annotator"} for i in range(annotators)])
        connection.execute(
            insert(Prompt), [{"text": f"p{i}", "content_hash": f"{i:064x}", "tags": []} for i in range(n_pairs)]
        )
        connection.execute(
            insert(Generation),
            [
                {"prompt_id": i // 2 + 1, "text": f"g{i}", "text_hash": f"{i:064x}", "params": {}}
                for i in range(2 * n_pairs)
            ],
        )
        rows = []
        noisy = rng.random(annotators) < 0.1
        for serial in range(judgments):
            user = int(rng.integers(annotators))
            pair = int(rng.integers(n_pairs))
            good, bad = 2 * pair + 1, 2 * pair + 2
            shown = [good, bad] if rng.random() < 0.5 else [bad, good]
            if serial % 5 == 4:
                rows.append(
                    {
                        "kind": "rating",
                        "user_id": user + 1,
                        "prompt_id": pair + 1,
                        "generation_ids": [good],
                        "payload": {"score": int(np.clip(4 + rng.integers(-1, 2), 1, 5))},
                        "shown_order": None,
                        "duration_ms": 3000,
                        "client_key": f"k{serial}",
                        "source": "bench",
                        "created_at": now,
                    }
                )
                continue
            right = rng.random() < (0.1 if noisy[user] else 0.85)
            rows.append(
                {
                    "kind": "pairwise",
                    "user_id": user + 1,
                    "prompt_id": pair + 1,
                    "generation_ids": [good, bad],
                    "payload": {"choice": "a" if right else "b"},
                    "shown_order": shown,
                    "duration_ms": int(rng.integers(1000, 9000)),
                    "client_key": f"k{serial}",
                    "source": "bench",
                    "created_at": now,
                }
            )
        connection.execute(insert(Judgment), rows)


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label}: {time.perf_counter() - start:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        timed(f"fill {args.judgments} judgments", lambda: fill(url, args.judgments, args.annotators, args.seed))
        with session_scope(url) as session:
            report = timed("annotator_report", lambda: annotator_report(session))
            agreement = timed("dataset_agreement", lambda: dataset_agreement(session))
        flagged = sum(bool(row.flags) for row in report)
        print(
            f"annotators {len(report)}, flagged {flagged}, "
            f"pairwise alpha {agreement['pairwise']['alpha']:.3f}, rating alpha {agreement['rating']['alpha']:.3f}"
        )

    rng = np.random.default_rng(args.seed)
    truth = rng.normal(size=args.judgments // 5)
    table = truth + 0.5 * rng.normal(size=(5, len(truth)))
    table[rng.random(table.shape) < 0.3] = np.nan
    alpha = timed(
        f"krippendorff_alpha interval, 5 coders x {len(truth)} units of continuous values",
        lambda: krippendorff_alpha(table.tolist(), "interval"),
    )
    print(f"interval alpha {alpha:.3f} (reliability by construction 1/1.25 = 0.8)")

    strengths = np.linspace(-1, 1, 8)
    a, b = rng.integers(8, size=(2, args.judgments))
    keep = a != b
    a, b = a[keep], b[keep]
    a_wins = rng.random(len(a)) < 1 / (1 + np.exp(strengths[b] - strengths[a]))
    outcomes = [(f"v{x}", f"v{y}") if win else (f"v{y}", f"v{x}") for x, y, win in zip(a, b, a_wins)]
    timed(
        f"bradley_terry {len(outcomes)} outcomes, 8 versions, 200 bootstrap draws",
        lambda: bradley_terry(outcomes, n_bootstrap=200),
    )
    print(f"machine: {platform.machine()}, {platform.python_version()}, {platform.platform()}")


if __name__ == "__main__":
    main()
