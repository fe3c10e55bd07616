"""After the policy stage: is the reward model any good, and is the new policy better than its parent?

* Reward model, on held-out pairs: accuracy, and precision/recall/F1 of "A is the chosen one",
  with A/B order shuffled per pair so the positive class is not always true.
* New policy vs parent, on held-out prompts: win-rate by the reward model (Wilson 95% CI),
  mean KL(new ‖ parent) at the evaluation temperature from samples of the new policy (sum of log-prob
  differences per completion), mean length change, and a length-bias alarm when the reward gain is mostly what
  the length change alone predicts.
* Degeneration of the sampled text, new policy and parent (rlhf/quality/degeneration.py): repetition,
  distinct-n, broken UTF-8, empty and cut-off answers, with alarms past `GateSpec.degeneration`.
* A distilled student against its teacher, besides the above: parameters of each, and decoding speed
  (tokens a second at a fixed length), which is what a smaller student is for.
* The publish gate turns those numbers into go-live or not.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from rlhf.models.modeling import parameter_count, preferred_device, preferred_dtype
from rlhf.quality.degeneration import DegenerationLimits, degeneration_alarms, degeneration_figures
from rlhf.training.config import EvalSpec, GateSpec
from rlhf.training.stages import PolicySource, load_tokenizer_for


def load_causal_lm(source: PolicySource, device: torch.device):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source.full_model, dtype=preferred_dtype())
    if source.is_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source.path).merge_and_unload()
    return model.to(device).eval()  # type: ignore[arg-type]  # transformers' @wraps(Module.to) types self


def load_reward_model(path: Path, device: torch.device):
    from transformers import AutoModelForSequenceClassification

    from rlhf.models.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(path))
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, dtype=preferred_dtype())
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def reward_scores(
    model, tokenizer, prompts: list[list[dict]], completions: list[str], batch_size: int = 16
) -> np.ndarray:
    scores = []
    for start in range(0, len(prompts), batch_size):
        texts = [
            tokenizer.apply_chat_template(p + [{"role": "assistant", "content": c}], tokenize=False)
            for p, c in zip(prompts[start : start + batch_size], completions[start : start + batch_size])
        ]
        batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False).to(model.device)
        scores.append(model(**batch).logits[:, 0].float().cpu())
    return torch.cat(scores).numpy() if scores else np.zeros(0)


def reward_model_metrics(model, tokenizer, pairs: list[dict], seed: int = 0) -> dict[str, Any]:
    """Held-out pairwise accuracy, and precision/recall/F1 of "A wins" with A/B order shuffled."""
    if not pairs:
        return {"n_pairs": 0}
    prompts = [row["prompt"] for row in pairs]
    chosen = reward_scores(model, tokenizer, prompts, [row["chosen"][-1]["content"] for row in pairs])
    rejected = reward_scores(model, tokenizer, prompts, [row["rejected"][-1]["content"] for row in pairs])
    a_is_chosen = np.random.default_rng(seed).random(len(pairs)) < 0.5
    a_score = np.where(a_is_chosen, chosen, rejected)
    b_score = np.where(a_is_chosen, rejected, chosen)
    predicted = a_score > b_score
    tp = int(np.sum(predicted & a_is_chosen))
    fp = int(np.sum(predicted & ~a_is_chosen))
    fn = int(np.sum(~predicted & a_is_chosen))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n_pairs": len(pairs),
        "accuracy": float(np.mean(chosen > rejected)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mean_margin": float(np.mean(chosen - rejected)),
    }


@dataclass
class Samples:
    sequences: torch.Tensor  # prompt (left-padded) + completion (right-padded)
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    texts: list[str]
    ended_by_eos: torch.Tensor | None = None  # known only for generated samples

    @property
    def lengths(self) -> np.ndarray:
        return self.completion_mask.sum(-1).cpu().numpy()


@torch.no_grad()
def sample(
    model, tokenizer, prompts: list[list[dict]], spec: EvalSpec, seed: int, whole: bool = False
) -> list[Samples]:
    """Completions at `spec.temperature`, cut to `spec.top_p` / `spec.top_k` unless `whole`. A KL needs the whole
    distribution: estimated from transformers' default top_k=50, a diffuse distilled student's came out at
    -3.5 nats against its teacher."""
    batches = []
    for start in range(0, len(prompts), spec.batch_size):
        texts = [
            tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
            for p in prompts[start : start + spec.batch_size]
        ]
        batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False).to(model.device)
        torch.manual_seed(seed + start)
        out = model.generate(
            **batch,
            do_sample=True,
            temperature=spec.temperature,
            top_p=1.0 if whole else spec.top_p,
            top_k=0 if whole else spec.top_k,
            max_new_tokens=spec.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        completion = out[:, batch["input_ids"].shape[1] :]
        is_eos = completion == tokenizer.eos_token_id
        after_eos = (is_eos.cumsum(-1) - is_eos.int()) > 0
        completion_mask = (~after_eos).long()
        texts = tokenizer.batch_decode(
            completion * completion_mask + tokenizer.pad_token_id * (1 - completion_mask), skip_special_tokens=True
        )
        batches.append(
            Samples(
                out,
                torch.cat([batch["attention_mask"], completion_mask], dim=1),
                completion_mask,
                texts,
                is_eos.any(-1).cpu(),
            )
        )
    return batches


@torch.no_grad()
def completion_logprob(model, samples: Samples, temperature: float = 1.0) -> torch.Tensor:
    """Sum of log p(token) over each completion's tokens, p the model's distribution at `temperature` (the one
    the samples were drawn from, for an unbiased KL; at 1.0 a child sampled at 0.7 gave KL -0.6 nats)."""
    sequences = samples.sequences.to(model.device)
    attention = samples.attention_mask.to(model.device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=sequences, attention_mask=attention, position_ids=positions).logits[:, :-1].float()
    logits = logits / temperature
    token_logps = torch.log_softmax(logits, -1).gather(-1, sequences[:, 1:, None])[..., 0]
    n = samples.completion_mask.shape[1]
    return (token_logps[:, -n:] * samples.completion_mask.to(model.device)).sum(-1).cpu()


def wilson_interval(wins: np.ndarray, n_effective: int | None = None, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a win-rate (ties count half, so the count may be fractional). A percentile
    bootstrap on 8 prompts covered p=0.9 57% of the time and collapses to a point at 8/8 wins; Wilson keeps
    ≥ 90% coverage at n=16 (tests/rlhf/test_evaluation.py). `n_effective`: the number of independent
    comparisons when `wins` holds repeats of the same prompts (they are not independent of each other)."""
    from scipy.stats import norm

    n = n_effective or len(wins)
    if len(wins) == 0 or n <= 0:
        return float("nan"), float("nan")
    p, z = float(np.mean(wins)), float(norm.ppf(0.5 + confidence / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def kl_from_samples(new_model, parent_model, tokenizer, prompts, spec: EvalSpec, new_samples: list[Samples]):
    """KL(child ‖ parent) per answer, both at the evaluation temperature, from the child's own samples of its whole
    distribution: the compared answers themselves when they are uncut, else a second draw (a cut leaves out
    tokens the parent may still like, and biases the estimate)."""
    cut = spec.top_p < 1 or spec.top_k > 0
    drawn = sample(new_model, tokenizer, prompts, spec, spec.seed + 2, whole=True) if cut else new_samples
    t = spec.temperature
    return torch.cat([completion_logprob(new_model, s, t) - completion_logprob(parent_model, s, t) for s in drawn])


def length_bias(rewards: np.ndarray, lengths: np.ndarray, reward_gain: float, length_change: float) -> dict[str, Any]:
    """Alarm when reward tracks length and the length change alone predicts at least half the reward gain."""
    if len(rewards) < 3 or np.std(lengths) == 0 or np.std(rewards) == 0:
        return {"correlation": None, "explained_gain": None, "alarm": False}
    correlation = float(np.corrcoef(lengths, rewards)[0, 1])
    slope = float(np.polyfit(lengths, rewards, 1)[0])
    explained = slope * length_change
    alarm = bool(reward_gain > 0 and correlation >= 0.3 and explained >= 0.5 * reward_gain)
    return {"correlation": correlation, "reward_per_token": slope, "explained_gain": explained, "alarm": alarm}


def text_figures(samples: list[Samples], max_new_tokens: int) -> dict[str, Any]:
    return degeneration_figures(
        [t for s in samples for t in s.texts],
        ended_by_eos=np.concatenate([cast(torch.Tensor, s.ended_by_eos).numpy() for s in samples]) if samples else [],
        token_counts=np.concatenate([s.lengths for s in samples]) if samples else [],
        max_new_tokens=max_new_tokens,
    )


def compare_degeneration(
    new_samples: list[Samples], parent_samples: list[Samples], max_new_tokens: int, limits: DegenerationLimits
) -> dict[str, Any]:
    child, parent = text_figures(new_samples, max_new_tokens), text_figures(parent_samples, max_new_tokens)
    return {"child": child, "parent": parent, "alarms": degeneration_alarms(child, parent, limits)}


def compare_policies(
    new: PolicySource,
    parent: PolicySource,
    reward_path: Path | None,
    prompts: list[list[dict]],
    spec: EvalSpec,
    degeneration: DegenerationLimits | None = None,
    samples_out: Path | None = None,
) -> dict[str, Any]:
    """Child against parent on held-out prompts; with `samples_out`, both answers to each prompt are kept there
    (JSON lines) for people to read and for judges the round does not know (the demo's hidden rule)."""
    device = preferred_device()
    tokenizer = load_tokenizer_for(new)
    prompts = prompts[: spec.max_prompts]
    new_model = load_causal_lm(new, device)
    parent_model = load_causal_lm(parent, device)
    new_samples = sample(new_model, tokenizer, prompts, spec, spec.seed)
    parent_samples = sample(parent_model, tokenizer, prompts, spec, spec.seed + 1)
    kl = kl_from_samples(new_model, parent_model, tokenizer, prompts, spec, new_samples)
    new_len = np.concatenate([s.lengths for s in new_samples])
    parent_len = np.concatenate([s.lengths for s in parent_samples])
    if samples_out is not None:
        save_samples(samples_out, prompts, new_samples, parent_samples)
    metrics: dict[str, Any] = {
        "n_prompts": len(prompts),
        "kl_to_parent": float(kl.mean()) if len(kl) else None,
        "mean_length": float(new_len.mean()) if len(new_len) else None,
        "parent_mean_length": float(parent_len.mean()) if len(parent_len) else None,
    }
    metrics["length_change"] = (metrics["mean_length"] - metrics["parent_mean_length"]) if len(prompts) else None
    metrics["degeneration"] = compare_degeneration(
        new_samples, parent_samples, spec.max_new_tokens, degeneration or DegenerationLimits()
    )
    del new_model, parent_model
    if reward_path is None or not prompts:
        return metrics
    reward_model, reward_tokenizer = load_reward_model(reward_path, device)
    new_texts = [t for s in new_samples for t in s.texts]
    parent_texts = [t for s in parent_samples for t in s.texts]
    new_r = reward_scores(reward_model, reward_tokenizer, prompts, new_texts, spec.batch_size)
    parent_r = reward_scores(reward_model, reward_tokenizer, prompts, parent_texts, spec.batch_size)
    wins = np.where(new_r > parent_r, 1.0, np.where(new_r == parent_r, 0.5, 0.0))
    low, high = wilson_interval(wins)
    reward_gain = float(new_r.mean() - parent_r.mean())
    metrics.update(
        {
            "win_rate": float(wins.mean()),
            "win_rate_ci95": [low, high],
            "mean_reward": float(new_r.mean()),
            "parent_mean_reward": float(parent_r.mean()),
            "reward_gain": reward_gain,
            "length_bias": length_bias(
                np.concatenate([new_r, parent_r]),
                np.concatenate([new_len, parent_len]),
                reward_gain,
                metrics["length_change"],
            ),
        }
    )
    return metrics


def adversarial_comparison(
    new: PolicySource, parent: PolicySource, reward_path: Path | None, prompts: list[list[dict]], spec: EvalSpec
) -> dict[str, Any]:
    """Child against parent on the held-out prompts of the adversarial set, apart from the general figures: a
    round that up-weights the set should win there more than elsewhere, and a regression there is hidden in
    a general win-rate over many ordinary prompts."""
    prompts = prompts[: spec.max_prompts]
    out: dict[str, Any] = {"n_prompts": len(prompts)}
    if not prompts:
        return out
    device = preferred_device()
    tokenizer = load_tokenizer_for(new)
    texts = {}
    for name, source, seed in (("child", new, spec.seed), ("parent", parent, spec.seed + 1)):
        model = load_causal_lm(source, device)
        texts[name] = [t for s in sample(model, tokenizer, prompts, spec, seed) for t in s.texts]
        del model
    if reward_path is None:
        return out
    reward_model, reward_tokenizer = load_reward_model(reward_path, device)
    new_r = reward_scores(reward_model, reward_tokenizer, prompts, texts["child"], spec.batch_size)
    parent_r = reward_scores(reward_model, reward_tokenizer, prompts, texts["parent"], spec.batch_size)
    wins = np.where(new_r > parent_r, 1.0, np.where(new_r == parent_r, 0.5, 0.0))
    out.update(
        {
            "win_rate": float(wins.mean()),
            "win_rate_ci95": list(wilson_interval(wins)),
            "mean_reward": float(new_r.mean()),
            "parent_mean_reward": float(parent_r.mean()),
        }
    )
    return out


@torch.no_grad()
def decoding_speed(
    model, tokenizer, prompts: list[list[dict]], spec: EvalSpec, budget_s: float = 2.0, max_passes: int = 100
) -> float:
    """Tokens a second of greedy decoding to exactly `max_new_tokens` per prompt (EOS suppressed), so a student
    and its teacher do the same work whatever they would answer. The fastest of the passes over all prompts that
    fit in `budget_s` (at least one), after a warm-up batch: on a shared machine other work only ever adds time,
    and single passes of the tiny models varied 20-fold from one to the next."""
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    batches = [
        tokenizer(texts[start : start + spec.batch_size], padding=True, return_tensors="pt", add_special_tokens=False)
        for start in range(0, len(texts), spec.batch_size)
    ]
    length = {"max_new_tokens": spec.max_new_tokens, "min_new_tokens": spec.max_new_tokens}

    def decode_all(batches) -> float:
        started = time.perf_counter()
        for batch in batches:
            model.generate(**batch.to(model.device), do_sample=False, pad_token_id=tokenizer.pad_token_id, **length)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    decode_all(batches[:1])
    timings: list[float] = []
    while len(timings) < max_passes and sum(timings) < budget_s:
        timings.append(decode_all(batches))
    return len(prompts) * spec.max_new_tokens / min(timings)


def distillation_figures(
    student: PolicySource, teacher: PolicySource, prompts: list[list[dict]], spec: EvalSpec
) -> dict[str, Any]:
    """Size and decoding speed of a distilled student and its teacher, on the same held-out prompts."""
    device = preferred_device()
    tokenizer = load_tokenizer_for(student)
    prompts = prompts[: spec.max_prompts]
    params: dict[str, int] = {}
    speed: dict[str, float] = {}
    for name, source in (("student", student), ("teacher", teacher)):
        model = load_causal_lm(source, device)
        params[name] = parameter_count(model)
        if prompts:
            speed[name] = decoding_speed(model, tokenizer, prompts, spec)
        del model
    return {
        "params": params,
        "param_ratio": params["student"] / params["teacher"],
        "tokens_per_s": speed or None,
        "speedup": speed["student"] / speed["teacher"] if speed else None,
        "tokens_per_prompt": spec.max_new_tokens,
    }


def _judge(reward_model: dict[str, Any]) -> str:
    """The win-rate is the round's own reward model's verdict; say how good a judge it was, since a weak one
    (a few held-out pairs, accuracy near 0.5) refuses a child that the annotators would prefer."""
    if reward_model.get("accuracy") is None:
        return ""
    return (
        f" (judged by the round's reward model: held-out accuracy {reward_model['accuracy']:.2f}"
        f" on {reward_model.get('n_pairs', '?')} pairs)"
    )


EVALUATION_SAMPLES = "evaluation_samples.jsonl"
"""In a round's work dir: the child's and the parent's answers to each evaluation prompt."""


def save_samples(out: Path, prompts: list[list[dict]], new: list[Samples], parent: list[Samples]) -> None:
    from storage.files import save_atomically

    rows = zip(prompts, [t for s in new for t in s.texts], [t for s in parent for t in s.texts])
    lines = "".join(json.dumps({"prompt": p, "child": c, "parent": q}) + "\n" for p, c, q in rows)
    save_atomically(out, lambda tmp: tmp.write_text(lines), folder=False, replace=True)


def load_samples(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def gate_decision(metrics: dict[str, Any], gate: GateSpec) -> dict[str, Any]:
    """Whether the new version goes live, and why (or why not)."""
    reasons = []
    win_rate = metrics.get("win_rate")
    if win_rate is None:
        reasons.append("no win-rate (the round has no reward model)")
    elif win_rate < gate.min_win_rate:
        reasons.append(f"win-rate {win_rate:.3f} < {gate.min_win_rate}{_judge(metrics.get('reward_model') or {})}")
    if gate.min_reward_accuracy is not None:
        accuracy = metrics.get("reward_model", {}).get("accuracy")
        if accuracy is None or accuracy < gate.min_reward_accuracy:
            reasons.append(f"reward-model accuracy {accuracy} < {gate.min_reward_accuracy}")
    if gate.block_on_length_bias and metrics.get("length_bias", {}).get("alarm"):
        reasons.append("length-bias alarm")
    if gate.min_speedup is not None:
        speedup = metrics.get("distillation", {}).get("speedup")
        if speedup is None:
            reasons.append("no decoding speed-up measured (no held-out prompts)")
        elif speedup < gate.min_speedup:
            reasons.append(f"decodes {speedup:.2f}x as fast as its teacher < {gate.min_speedup}x")
    degeneration = metrics.get("degeneration")
    if degeneration:
        reasons += [
            f"degeneration: {alarm}"
            for alarm in degeneration_alarms(degeneration["child"], degeneration["parent"], gate.degeneration)
        ]
    return {"passed": not reasons, "min_win_rate": gate.min_win_rate, "reasons": reasons, "publish": gate.publish}
