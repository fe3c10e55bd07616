"""`rlhf sweep` on the tiny model: the best trial's score against the shipped config's, on one data snapshot.

A fresh store with the round tests' data (polite answers beat curt ones), the tiny base model live,
then `rlhf sweep configs/round_dpo_tiny.yaml --baseline` over DPO's learning rate and beta (TPE):
trial 0 runs the shipped values, the other trials are searched. Every trial is a real round
process (SFT, reward model, DPO, evaluation) with `gate.publish: false`. Prints a Markdown table for
bench/RESULTS.md; each trial's seconds run from its round's creation to its end (process start included).

    python bench/sweep.py --trials 9 --prompts 80
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository root: storage, rlhf, tests.helpers

PARAMS = ("stages.dpo.learning_rate=loguniform(1e-4,3e-3)", "stages.dpo.beta=choice(0.05,0.1,0.3)")


def build_store(workdir: Path, prompts: int) -> str:
    from rlhf.models.modeling import init_tiny
    from storage.migrate import upgrade
    from tests.helpers import seed_round_store

    url = f"sqlite:///{workdir / 'store.db'}"
    upgrade(url)
    seed_round_store(url, init_tiny(workdir / "base"), n_prompts=prompts, annotators=2, source="bench")
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=9, help="including trial 0, the shipped values")
    parser.add_argument("--prompts", type=int, default=80, help="seeded prompts (a fifth held out for evaluation)")
    parser.add_argument("--eval-prompts", type=int, default=16)
    parser.add_argument("--objective", default="win_rate", choices=["win_rate", "reward_accuracy"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from rlhf.cli import main as rlhf
    from rlhf.jobs.runner import get_round
    from rlhf.jobs.sweep import sweep_trials

    os.chdir(ROOT)  # round processes start in the current directory: `python -m` then imports this checkout
    with tempfile.TemporaryDirectory() as scratch:
        url = build_store(Path(scratch), args.prompts)
        command = ["sweep", "configs/round_dpo_tiny.yaml", f"evaluation.max_prompts={args.eval_prompts}"]
        for param in PARAMS:
            command += ["--param", param]
        command += ["--trials", str(args.trials), "--baseline", "--objective", args.objective]
        command += ["--seed", str(args.seed), "--study", "bench", "--db", url]
        started = time.perf_counter()
        code = rlhf(command)
        wall = time.perf_counter() - started
        trials = sweep_trials(url, "bench")
        print(f"\n`rlhf {' '.join(command[:-2])}` exit {code}, {wall:.0f} s for {len(trials)} trials\n")
        print(f"| trial | learning_rate | beta | {args.objective} | win-rate 95% CI | RM accuracy | feasible | s |")
        print("|---|---|---|---|---|---|---|---|")
        for trial in trials:
            row = get_round(trial.round_id, url) if trial.round_id else None
            metrics = row.metrics if row else {}
            ci = metrics.get("win_rate_ci95") or [float("nan")] * 2
            seconds = (row.finished_at - row.created_at).total_seconds() if row and row.finished_at else float("nan")
            name = f"{trial.number}" + (" (shipped)" if trial.baseline else "") + (" ★" if trial.best else "")
            score = f"{trial.score:.3f}" if trial.score is not None else trial.state
            accuracy = (metrics.get("reward_model") or {}).get("accuracy")
            print(
                f"| {name} | {trial.params['stages.dpo.learning_rate']:.2e} | {trial.params['stages.dpo.beta']} "
                f"| {score} | [{ci[0]:.2f}, {ci[1]:.2f}] | {accuracy if accuracy is None else f'{accuracy:.2f}'} "
                f"| {'yes' if trial.feasible else 'no: ' + '; '.join(trial.alarms)} | {seconds:.0f} |"
            )


if __name__ == "__main__":
    main()
