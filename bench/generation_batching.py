"""Batched generation vs one prompt at a time, and batches sorted by prompt length vs in queue order.

Goal: batched >= 8x faster than one at a time for 64 prompts; on SmolLM2 at least the measured batched
rate (169 new-token slots/s for 64 prompts x 64 tokens, ../shared/REAL-MODEL.md).

    python bench/generation_batching.py [--prompts 64] [--max-new-tokens 32] [--batch-size 64] [--repeats 3]
    python bench/generation_batching.py --size smol --max-new-tokens 64 --batch-size 16 --repeats 2

"Sorted" is the order the queue filler (`answer_prompts`) batches in: by prompt length, so each batch
pads less. Rates count new-token slots (prompts x max_new_tokens / s), as REAL-MODEL.md does.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from base_models import SIZES, base_model

from rlhf.inference.generation import generate_texts
from rlhf.models.modeling import load_policy

DATA = Path(__file__).parents[1] / "rlhf" / "demo" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="tiny", choices=SIZES)
    parser.add_argument("--no-single", action="store_true", help="skip one-prompt-at-a-time (minutes on SmolLM2)")
    args = parser.parse_args()

    lines = (DATA / ("prompts_real.jsonl" if args.size == "smol" else "prompts.jsonl")).read_text().splitlines()
    prompts = [json.loads(line)["prompt"] for line in random.Random(0).sample(lines, args.prompts)]
    sampling = {"max_new_tokens": args.max_new_tokens, "temperature": 0.7, "top_p": 0.9}
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_policy(str(base_model(args.size, Path(tmp))))
    generate_texts(model, tokenizer, prompts[:2], seed=0, **sampling)  # warm-up

    def one_at_a_time() -> None:
        for i, prompt in enumerate(prompts):
            generate_texts(model, tokenizer, [prompt], seed=i, **sampling)

    def batched(order: list[str]) -> None:
        for start in range(0, len(order), args.batch_size):
            generate_texts(model, tokenizer, order[start : start + args.batch_size], seed=start, **sampling)

    by_length = sorted(prompts, key=len)
    runs = {"in queue order": lambda: batched(prompts), "sorted by length": lambda: batched(by_length)}
    if not args.no_single:
        runs = {"one at a time": one_at_a_time, **runs}
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    tokens = [len(tokenizer(p)["input_ids"]) for p in prompts]
    print(
        f"device {model.device}, torch threads {torch.get_num_threads()}, {args.size} model, "
        f"{len(prompts)} prompts ({min(tokens)}-{max(tokens)} tokens) x {args.max_new_tokens} new tokens, "
        f"batch size {args.batch_size}, median of {args.repeats}"
    )
    medians = {name: statistics.median(seconds) for name, seconds in timings.items()}
    for name, seconds in medians.items():
        print(f"{name:>17}: {seconds:.2f} s ({len(prompts) * args.max_new_tokens / seconds:.0f} new-token slots/s)")
    if "one at a time" in medians:
        print(f"speed-up, batched vs one at a time: {medians['one at a time'] / medians['in queue order']:.1f}x")
    print(f"speed-up, sorted vs queue order:    {medians['in queue order'] / medians['sorted by length']:.2f}x")


if __name__ == "__main__":
    main()
