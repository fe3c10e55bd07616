"""An adversarial round: the win-rate on the adversarial set against the general one, with and without up-weighting.

The round tests' store (polite answers beat curt ones, two annotators per pair) on the tiny model; a
quarter of the prompts are put in the adversarial set (as the Red-team tab would), then the shipped
`configs/round_dpo_tiny.yaml` runs once per `data.adversarial_weight`, each on a fresh copy of the
store, and the round's evaluation reports both win-rates (judged by the round's reward model).

    python bench/red_team_round.py [--prompts 120] [--weights 1,3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def build_store(workdir: Path, prompts: int) -> Path:
    from sqlmodel import select

    from rlhf.models.modeling import init_tiny
    from storage.db import dispose_engines, session_scope
    from storage.migrate import upgrade
    from storage.models import AdversarialPrompt, Prompt
    from tests.helpers import seed_round_store

    url = f"sqlite:///{workdir / 'store.db'}"
    upgrade(url)
    seed_round_store(url, init_tiny(workdir / "base"), n_prompts=prompts, annotators=2, source="bench")
    with session_scope(url) as session:
        for prompt in session.exec(select(Prompt).order_by(Prompt.id)).all()[::4]:
            session.add(AdversarialPrompt(prompt_id=prompt.id, origin="written", added_by="bench"))
    dispose_engines()  # checkpoints the WAL, so a file copy holds every row
    return workdir / "store.db"


def run(store: Path, weight: float, max_prompts: int) -> tuple[dict, dict, float]:
    from rlhf.jobs.lifecycle import create_round
    from rlhf.training.config import load_round_config
    from rlhf.training.recipe import run_round
    from storage.db import dispose_engines, session_scope
    from storage.export import read_manifest
    from storage.models import Round

    url = f"sqlite:///{store}"
    config = load_round_config(
        ROOT / "configs" / "round_dpo_tiny.yaml",
        [f"data.adversarial_weight={weight}", f"evaluation.max_prompts={max_prompts}", "data.test_fraction=0.4"],
    )
    with session_scope(url) as session:
        row = create_round(session, config=config, url=url)
        round_id, work = row.id, Path(row.work_dir)
    started = time.perf_counter()
    run_round(round_id, url)
    seconds = time.perf_counter() - started
    with session_scope(url) as session:
        metrics = session.get_one(Round, round_id).metrics
    manifest = read_manifest(work / "data" / "preference")
    dispose_engines()
    return metrics, manifest, seconds


def interval(figures: dict) -> str:
    low, high = figures.get("win_rate_ci95") or (float("nan"), float("nan"))
    return f"{figures.get('win_rate', float('nan')):.2f} [{low:.2f}, {high:.2f}] (n={figures.get('n_prompts')})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=120)
    parser.add_argument("--weights", default="1,3")
    parser.add_argument("--max-prompts", type=int, default=64)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        seed = build_store(Path(tmp), args.prompts)
        for weight in [float(w) for w in args.weights.split(",")]:
            store = Path(tmp) / f"w{weight:g}" / "store.db"  # its own artifacts/ beside it: round ids restart
            store.parent.mkdir()
            shutil.copy(seed, store)
            metrics, manifest, seconds = run(store, weight, args.max_prompts)
            adversarial = manifest["adversarial"]
            rows.append(
                f"| {weight:g} | {manifest['counts']['train']} ({adversarial['rows']['train']} adversarial before "
                f"weighting) | {interval(metrics)} | {interval(metrics.get('adversarial') or {})} | "
                f"{(metrics.get('reward_model') or {}).get('accuracy', float('nan')):.2f} | "
                f"{'yes' if metrics['gate']['passed'] else 'no'} | {seconds:.0f} |"
            )
            print(rows[-1], flush=True)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        "| adversarial_weight | DPO train pairs | win-rate, general set [95% CI] | win-rate, adversarial set "
        "[95% CI] | RM accuracy | gate passed | seconds |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
