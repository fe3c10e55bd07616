"""Batched generation vs one prompt at a time, on the tiny model (goal: >= 8x faster for 64 prompts).

python bench/generation_batching.py [--prompts 64] [--max-new-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rlhf.inference.generation import generate_texts
from rlhf.models.modeling import init_tiny, load_policy

PROMPTS_FILE = Path(__file__).parents[1] / "rlhf" / "demo" / "data" / "prompts.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="tiny", choices=["tiny", "small"])
    args = parser.parse_args()

    prompts = [json.loads(line)["prompt"] for line in PROMPTS_FILE.read_text().splitlines()[: args.prompts]]
    sampling = {"max_new_tokens": args.max_new_tokens, "temperature": 1.0, "top_p": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_policy(str(init_tiny(Path(tmp) / "tiny", size=args.size)))
    generate_texts(model, tokenizer, prompts[:2], seed=0, **sampling)  # warm-up

    def one_at_a_time() -> None:
        for i, prompt in enumerate(prompts):
            generate_texts(model, tokenizer, [prompt], seed=i, **sampling)

    def batched() -> None:
        for start in range(0, len(prompts), args.batch_size):
            generate_texts(model, tokenizer, prompts[start : start + args.batch_size], seed=start, **sampling)

    timings = {"one_at_a_time": [], "batched": []}
    for _ in range(args.repeats):
        for name, run in (("one_at_a_time", one_at_a_time), ("batched", batched)):
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    single, batch = statistics.median(timings["one_at_a_time"]), statistics.median(timings["batched"])
    print(
        f"device {model.device}, torch threads {torch.get_num_threads()}, {args.size} model, "
        f"{len(prompts)} prompts x {args.max_new_tokens} new tokens, batch size {args.batch_size}, "
        f"median of {args.repeats}"
    )
    print(f"one prompt at a time: {single:.2f} s ({len(prompts) / single:.1f} prompts/s)")
    print(f"batched:              {batch:.2f} s ({len(prompts) / batch:.1f} prompts/s)")
    print(f"speed-up:             {single / batch:.1f}x (goal >= 8x)")


if __name__ == "__main__":
    main()
