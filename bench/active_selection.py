"""How many labels does the policy need to reach 0.80 win-rate: active (uncertainty) vs random selection?

Per seed, the real loop pieces of `rlhf demo`: a fresh store, the tiny base policy, 256 bundled prompts
(64 held out), the app on a local port. The app fills one large pool (8 answers per prompt → 4 pairs per
prompt, 1024 pairs, overlap 1) and the demo's simulated annotators (rule `more_e`, 5% flip noise) judge
pairs **over the app's HTTP API** in the order the queue serves them.

1. Seed: the first `--seed-labels` judgments are a random sample of the pool; an ordinary DPO round
   (`configs/round_dpo_demo.yaml` with `parent: base`: reward model → DPO, from the base policy) trains on them.
2. The store is copied (`storage.backup`) into one arm per `--arms` entry, all going on from the same seed labels:
   - random: the rest of the pool is served in a seeded random order;
   - SELECTION:SCORER (e.g. uncertainty:reward_model, margin:policy): the app's `queue.selection` and
     `queue.selection_scorer`, re-scored through the Annotators tab's "Re-score queue" endpoint before each
     batch, so with the newest round's reward model or policy (rlhf/selection.py).
   Each arm labels `--step` more pairs, runs the same round on everything labelled so far, and the new
   policy is measured against the base under the hidden rule on the held-out prompts — up to `--max-labels`.
   Before each batch the bench also checks the arm's scorer against the hidden rule on the open pairs
   (share of non-tied pairs it orders right), which only the simulation can know.
Labels count every judgment an annotator made, ties included (a tie costs a person as much as a choice).

    python bench/active_selection.py [--seeds 0,1,2] [--arms random,uncertainty:reward_model,margin:policy]
                                     [--seed-labels 32] [--step 32] [--max-labels 256] [--rule more_e]

Goal (issue 8): ≥ 30% fewer labels with active selection to reach 0.80.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
TARGET = 0.80


def write_configs(folder: Path) -> tuple[Path, Path]:
    """The demo's app and DPO round configs, changed only where this benchmark needs it."""
    import yaml

    app = yaml.safe_load((ROOT / "configs" / "app_demo.yaml").read_text())
    app["generation"]["per_prompt"] = 8
    app["queue"]["fill_prompts"] = 256
    app["queue"].update(mix={"pairwise": 1.0}, agreement_share=0.0)  # pairs only, each to one annotator, as measured
    app_path = folder / "app_bench.yaml"
    app_path.write_text(yaml.safe_dump(app))
    round_cfg = yaml.safe_load((ROOT / "configs" / "round_dpo_demo.yaml").read_text())
    round_cfg.update(name="dpo-bench", parent="base", gate={"min_win_rate": 0.0})
    round_path = folder / "round_bench.yaml"
    round_path.write_text(yaml.safe_dump(round_cfg))
    return app_path, round_path


def shuffle_queue(url: str, seed: int) -> int:
    """Random selection: open pairs get a seeded random serving order."""
    from storage import priority
    from storage.db import session_scope

    with session_scope(url) as session:
        items = [pair.item_id for pair in priority.open_pairs(session)]
        order = random.Random(seed).sample(items, len(items))
        return priority.set_priorities(session, {item: 1.0 - rank / len(order) for rank, item in enumerate(order)})


def label_counts(url: str) -> dict[str, int]:
    from sqlmodel import select

    from storage.db import session_scope
    from storage.models import Judgment

    with session_scope(url) as session:
        payloads = session.exec(select(Judgment.payload)).all()
    ties = sum((p or {}).get("choice") == "tie" for p in payloads)
    return {"labels": len(payloads), "ties": ties}


class Arm:
    """One store with the app running on it."""

    def __init__(
        self,
        name: str,
        index: int,
        url: str,
        settings,
        app_config: Path,
        round_config: Path,
        held_out: list[str],
        passwords: dict[str, str],
    ):
        from feedback_app.app import launch
        from feedback_app.config import load_app_config
        from feedback_app.http_client import free_port
        from rlhf.inference.policy_pool import PolicyPool

        self.name, self.index, self.url, self.settings, self.held_out = name, index, url, settings, held_out
        self.round_config, self.passwords = round_config, passwords
        port = free_port()
        selection, _, scorer = name.partition(":")
        config = load_app_config(
            app_config, host="127.0.0.1", port=port, selection=selection, selection_scorer=scorer or "reward_model"
        )
        self.demo, self.ctx = launch(url, config, block=False)
        self.base_url = f"http://127.0.0.1:{port}"
        self.pool = PolicyPool(max_loaded=2)
        self.batches = 0

    def fill(self) -> str:
        from rlhf.demo.loop import fill_queue

        return fill_queue(self.base_url, self.passwords)

    def rescore(self) -> str:
        from feedback_app.http_client import AppClient

        with AppClient(self.base_url, "engineer", self.passwords["engineer"]) as engineer:
            return str(engineer.call("annotators_rescore")[0])

    def label(self, count: int) -> int:
        from rlhf.demo.loop import annotate

        self.batches += 1
        return annotate(
            self.base_url,
            self.passwords,
            dataclasses.replace(self.settings, judgments=count),
            round_index=1000 * self.index + self.batches,
        )

    def scorer_accuracy(self) -> float | None:
        """Share of open, non-tied pairs whose order the arm's scorer gets right under the hidden rule."""
        from rlhf.demo.simulated_annotators import rule_by_name
        from storage import priority
        from storage.db import session_scope

        scorer = self.ctx.prioritizer.current_scorer()
        if scorer is None:
            return None
        rule = rule_by_name(self.settings.rule)
        with session_scope(self.url) as session:
            pairs = [p for p in priority.open_pairs(session) if rule(p.a) != rule(p.b)]
        p_a = scorer(pairs)
        return float(np.mean([(p > 0.5) == (rule(pair.a) > rule(pair.b)) for pair, p in zip(pairs, p_a)]))

    def train_and_measure(self) -> dict:
        from rlhf.demo.loop import rule_win_rate
        from rlhf.jobs import runner
        from storage.db import session_scope
        from storage.models import ModelVersion

        started = time.perf_counter()
        round_id = runner.start_round(self.round_config, url=self.url, created_by="engineer")
        row = runner.follow(round_id, url=self.url)
        if row.status != "succeeded":
            raise SystemExit(f"{self.name}: round {round_id} {row.status}: {row.error}")
        with session_scope(self.url) as session:
            version = session.get(ModelVersion, row.output_version_id).name
        win, ci = rule_win_rate(self.url, version, "base", self.held_out, self.settings, self.pool)
        rm = (row.metrics or {}).get("reward_model") or {}
        return {
            **label_counts(self.url),
            "win_rate": win,
            "ci95": ci,
            "version": version,
            "round": round_id,
            "rm_accuracy": rm.get("accuracy"),
            "seconds": time.perf_counter() - started,
        }

    def close(self) -> None:
        self.demo.close()


def run_seed(seed: int, folder: Path, args) -> dict[str, list[dict]]:
    from rlhf.demo.loop import DemoSettings, prepare_store, register_base

    app_config, round_config = write_configs(folder)
    settings = DemoSettings(
        workdir=folder / "seed",
        model="tiny",
        app_config=app_config,
        round_config=round_config,
        eval_prompts=args.eval_prompts,
        annotators=4,
        rule=args.rule,
        serve=False,
        seed=seed,
    )
    url, passwords, held_out = prepare_store(settings)
    register_base(settings, url)
    first = Arm("random", 0, url, settings, app_config, round_config, held_out, passwords)
    try:
        print(f"seed {seed}: {first.fill()}", flush=True)
        shuffle_queue(url, seed)
        first.label(args.seed_labels)
        start = first.train_and_measure()
    finally:
        first.close()
    print(f"seed {seed}: {start['labels']} seed labels → win-rate {start['win_rate']:.2f}", flush=True)
    return run_arms(seed, folder, args, url, settings, app_config, round_config, held_out, passwords, start)


def run_arms(
    seed: int,
    folder: Path,
    args,
    url: str,
    settings,
    app_config: Path,
    round_config: Path,
    held_out: list[str],
    passwords: dict[str, str],
    start: dict,
) -> dict[str, list[dict]]:
    from storage.backup import backup

    curves = {}
    for index, name in enumerate(args.arms, start=1):
        arm_url = f"sqlite:///{backup(folder / name.replace(':', '-') / 'rlhf.db', url=url)}"
        arm = Arm(name, index, arm_url, settings, app_config, round_config, held_out, passwords)
        curves[name] = [start]
        try:
            while curves[name][-1]["labels"] + args.step <= args.max_labels:
                if name == "random":
                    shuffle_queue(arm_url, seed * 100 + len(curves[name]))
                else:
                    print(
                        f"  {name}: {arm.rescore()}; scorer orders {arm.scorer_accuracy():.0%} of open "
                        f"non-tied pairs right",
                        flush=True,
                    )
                arm.label(args.step)
                point = arm.train_and_measure()
                curves[name].append(point)
                print(
                    f"  {name}: {point['labels']} labels ({point['ties']} ties) → win-rate {point['win_rate']:.2f} "
                    f"[{point['ci95'][0]:.2f}, {point['ci95'][1]:.2f}], RM acc {point['rm_accuracy']}, "
                    f"{point['seconds']:.0f}s",
                    flush=True,
                )
        finally:
            arm.close()
    return curves


def labels_to_reach(budgets: list[int], win_rates: list[float], target: float = TARGET) -> float | None:
    """Labels at which the curve first reaches `target`, interpolated linearly between measured budgets."""
    for index, (labels, win) in enumerate(zip(budgets, win_rates)):
        if win >= target:
            if index == 0:
                return float(labels)
            x0, y0 = budgets[index - 1], win_rates[index - 1]
            return x0 + (target - y0) * (labels - x0) / (win - y0)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arms", default="random,uncertainty:reward_model,margin:policy")
    parser.add_argument("--seed-labels", type=int, default=32)
    parser.add_argument("--step", type=int, default=32)
    parser.add_argument("--max-labels", type=int, default=256)
    parser.add_argument("--eval-prompts", type=int, default=64)
    parser.add_argument("--rule", default="more_e")
    parser.add_argument("--out", type=Path, default=None, help="also write the raw curves here (JSON)")
    args = parser.parse_args()
    args.arms = args.arms.split(",")

    started = time.perf_counter()
    results = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            results[seed] = run_seed(seed, Path(tmp), args)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))

    report(results, args, time.perf_counter() - started)


def report(results: dict, args, seconds: float) -> None:
    arms = args.arms
    budgets = [point["labels"] for point in next(iter(results.values()))[arms[0]]]
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
        f"rule {args.rule}; seeds {args.seeds}; {seconds:.0f}s"
    )
    print("| labels | " + " | ".join(f"{arm}: win-rate vs base, mean (per seed)" for arm in arms) + " |")
    print("|---|" + "---|" * len(arms))
    means = {
        arm: [float(np.mean([results[s][arm][i]["win_rate"] for s in results])) for i in range(len(budgets))]
        for arm in arms
    }
    for i, labels in enumerate(budgets):
        cells = []
        for arm in arms:
            per_seed = ", ".join(f"{results[s][arm][i]['win_rate']:.2f}" for s in results)
            cells.append(f"{means[arm][i]:.2f} ({per_seed})")
        print(f"| {labels} | " + " | ".join(cells) + " |")
    ties = {
        arm: np.mean([p["ties"] / max(p["labels"], 1) for s in results for p in results[s][arm][1:]]) for arm in arms
    }
    print("ties among labels: " + ", ".join(f"{arm} {ties[arm]:.0%}" for arm in arms))
    needed = {arm: labels_to_reach(budgets, means[arm]) for arm in arms}
    for arm in arms:
        per_seed = [labels_to_reach(budgets, [p["win_rate"] for p in results[s][arm]]) for s in results]
        shown = "not reached" if needed[arm] is None else f"{needed[arm]:.0f}"
        print(
            f"{arm}: labels to reach {TARGET:.2f} (mean curve): {shown}; per seed: "
            + ", ".join("–" if v is None else f"{v:.0f}" for v in per_seed)
        )
    if needed.get("random"):
        for arm in arms[1:]:
            if needed[arm]:
                print(f"{arm} needs {1 - needed[arm] / needed['random']:.0%} fewer labels than random")


if __name__ == "__main__":
    main()
