"""How much win-rate do 10% adversarial annotators cost, with and without quality weighting?

Three runs of the real loop (`rlhf.demo.loop.run_demo`, one DPO round, `configs/round_dpo_demo.yaml`),
10 simulated annotators, every pair shown to 3 of them (overlap 3):
  1. all honest, majority aggregation;
  2. one of the ten always answers against the rule, majority aggregation;
  3. the same crowd, the round config's `data.aggregation: weighted` (rlhf.quality.analytics weights).
Prints a Markdown table for bench/RESULTS.md.

    python bench/adversarial.py [--judgments 1440]

Goal (issue 8): ≤ 0.05 win-rate lost to 10% adversarial annotators with weighting.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
SHIPPED = ROOT / "configs" / "round_dpo_demo.yaml"


def config_with(aggregation: str, folder: Path) -> Path:
    import yaml

    config = yaml.safe_load(SHIPPED.read_text())
    config["data"]["aggregation"] = aggregation
    path = folder / f"round_dpo_demo_{aggregation}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    from feedback_app.http_client import free_port
    from rlhf.demo.loop import DemoSettings, run_demo

    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, default=1440)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs = [
        ("all honest", 0, "majority"),
        ("1 of 10 adversarial", 1, "majority"),
        ("1 of 10 adversarial", 1, "weighted"),
    ]
    rows = []
    for label, adversarial, aggregation in runs:
        with tempfile.TemporaryDirectory() as tmp:
            results = run_demo(
                DemoSettings(
                    workdir=Path(tmp) / "demo",
                    model="tiny",
                    rounds=1,
                    round_config=config_with(aggregation, Path(tmp)),
                    judgments=args.judgments,
                    annotators=10,
                    adversarial=adversarial,
                    overlap=3,
                    serve=False,
                    port=free_port(),
                    seed=args.seed,
                )
            )
        result = results[0]
        low, high = result.rule_ci95 or (float("nan"), float("nan"))
        rows.append(
            f"| {label} | {aggregation} | {args.judgments} | {result.rule_win_rate:.2f} [{low:.2f}, {high:.2f}] |"
        )
    print("| crowd | aggregation | judgments (overlap 3) | win-rate vs parent, hidden rule [95% CI] |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
