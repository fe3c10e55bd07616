"""Does the loop teach the policy the annotators' hidden rule? One demo per policy stage.

For each stage, the real loop (`rlhf.demo.loop.run_demo`, app over HTTP, simulated
annotators, shipped tiny round config) runs `--rounds` rounds of `--judgments`
judgments; after each round the new policy is compared with its parent under the
hidden rule on held-out prompts. Prints a Markdown table for bench/RESULTS.md.

    python bench/efficacy.py [--stages dpo,kto,grpo,rloo] [--rounds 2] [--judgments 480]

Goal (issue 7): win-rate ≥ 0.80 after one DPO round of ≤ 500 judgments.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)


def main() -> None:
    from feedback_app.http_client import free_port
    from rlhf.demo.loop import DemoSettings, run_demo

    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", default="dpo,kto,grpo,rloo")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--judgments", type=int, default=480)
    parser.add_argument("--rule", default="more_e")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = []
    for stage in args.stages.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            results = run_demo(
                DemoSettings(
                    workdir=Path(tmp) / "demo",
                    model="tiny",
                    rounds=args.rounds,
                    policy_stage=stage,
                    judgments=args.judgments,
                    rule=args.rule,
                    serve=False,
                    port=free_port(),
                    seed=args.seed,
                )
            )
            wall = time.perf_counter() - started
        for index, result in enumerate(results, start=1):
            low, high = result.rule_ci95 or (float("nan"), float("nan"))
            rm = result.metrics.get("win_rate")
            rows.append(
                f"| {stage} | {index} | {args.judgments} | "
                f"{result.rule_win_rate if result.rule_win_rate is not None else float('nan'):.2f} "
                f"[{low:.2f}, {high:.2f}] | {rm if rm is not None else float('nan'):.2f} | "
                f"{'yes' if result.live else 'no'} | {sum(result.seconds.values()):.0f} |"
            )
        print(f"{stage}: {wall:.0f}s", flush=True)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
        f"rule {args.rule}, seed {args.seed}"
    )
    print(
        "| stage | round | judgments | win-rate vs parent, hidden rule [95% CI] | win-rate, reward model | "
        "published | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
