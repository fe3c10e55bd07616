"""A distilled student against its teacher: size, decoding speed and win-rate (the distillation stage's figures).

A fresh store seeded the way the round tests seed one (`tests.helpers.seed_round_store`: `--prompts` prompts,
two annotators preferring the polite answer); a teacher made by the loop: the `--teacher-size` tiny model after
one `round_dpo_demo.yaml` round (reward model → DPO, full fine-tune), set live whatever its gate says; then one
`round_distill_tiny.yaml` round per `--students` size, each with the teacher as `parent` and `--steps`
distillation steps. Each row is what the round stored: parameters, greedy tokens/s at a fixed length (best pass
of those that fit in 2 s), win-rate vs the teacher by the distill round's own reward model (Wilson 95% CI) on the
held-out prompts, KL(student ‖ teacher), the gate, and the distill stage's seconds. Prints a Markdown table.

    python bench/distill.py --teacher-size small --students tiny,tinier --steps 60 --prompts 200
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository root: storage, rlhf, tests.helpers


def run(url: str, config_path: str, overrides: list[str]):
    from rlhf.jobs.lifecycle import create_round
    from rlhf.training.config import load_round_config
    from rlhf.training.recipe import run_round
    from storage.db import session_scope
    from storage.models import ModelVersion, Round

    config = load_round_config(config_path, overrides)
    with session_scope(url) as session:
        round_id = create_round(session, config=config, url=url).id
    run_round(round_id, url)
    with session_scope(url) as session:
        row = session.get_one(Round, round_id)
        if row.status != "succeeded":
            raise SystemExit(f"round {round_id} ({config_path}): {row.status}: {row.error}")
        version = session.get_one(ModelVersion, row.output_version_id)
        session.expunge(version)
        return version


def main() -> None:
    from rlhf.models import registry
    from rlhf.models.modeling import init_tiny
    from storage.db import session_scope
    from storage.migrate import upgrade
    from tests.helpers import seed_round_store

    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher-size", default="small")
    parser.add_argument("--students", default="tiny,tinier")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--eval-prompts", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'store.db'}"
        upgrade(url)
        seed_round_store(url, init_tiny(work / "teacher-init", size=args.teacher_size), n_prompts=args.prompts)
        started = time.perf_counter()
        teacher = run(url, str(ROOT / "configs" / "round_dpo_demo.yaml"), [])
        teacher_s = time.perf_counter() - started
        with session_scope(url) as session:
            registry.set_live(session, name=teacher.name, by="bench/distill.py")
        length = [f"evaluation.max_new_tokens={args.max_new_tokens}", f"evaluation.max_prompts={args.eval_prompts}"]
        for size in args.students.split(","):
            started = time.perf_counter()
            student = run(
                url,
                str(ROOT / "configs" / "round_distill_tiny.yaml"),
                [
                    f"parent={teacher.name}",
                    f"name=distill-{size}",
                    f"stages.distill.student={size}",
                    f"stages.distill.max_steps={args.steps}",
                    f"stages.distill.max_completion_length={args.max_new_tokens}",
                    *length,
                ],
            )
            rows.append((size, student.metrics, time.perf_counter() - started))

    print(
        f"\nteacher: {args.teacher_size} tiny model after round_dpo_demo.yaml ({teacher_s:.0f} s; its win-rate vs "
        f"the init by its reward model {teacher.metrics.get('win_rate', float('nan')):.2f}); "
        f"{args.prompts} prompts, {args.steps} distill steps; {platform.machine()}, {os.cpu_count()} cores\n"
    )
    print(
        "| student | params student / teacher | tokens/s student / teacher | speed-up "
        "| win-rate vs teacher [95% CI] (n) | KL(student‖teacher) | gate | distill s | round s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size, metrics, seconds in rows:
        figures = metrics["distillation"]
        params, speed = figures["params"], figures["tokens_per_s"]
        low, high = metrics["win_rate_ci95"]
        gate = "passed" if metrics["gate"]["passed"] else "; ".join(metrics["gate"]["reasons"])
        print(
            f"| {size} | {params['student']:,} / {params['teacher']:,} ({figures['param_ratio']:.1%}) "
            f"| {speed['student']:,.0f} / {speed['teacher']:,.0f} | {figures['speedup']:.2f}× "
            f"| {metrics['win_rate']:.2f} [{low:.2f}, {high:.2f}] ({metrics['n_prompts']}) "
            f"| {metrics['kl_to_parent']:.2f} | {gate} | {metrics['stages']['distill']['seconds']:.0f} "
            f"| {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
