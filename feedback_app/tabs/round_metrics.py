"""A round's evaluation as people read it: the publish gate's decision and a metrics card, in escaped Markdown.

The figures are the ones `rlhf.training.evaluation` stores in the round's and the version's metrics
(`gate` is `gate_decision`'s result); every value passes through `escape_markdown`, so a stored string
can never become a link, an image or HTML.
"""

from __future__ import annotations

from typing import Any

from storage.markup import escape_markdown


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return escape_markdown(str(value))


def was_published(gate: Any) -> bool:
    """The gate passed and the config let it publish (a sweep's trials pass without going live)."""
    return isinstance(gate, dict) and bool(gate.get("passed")) and gate.get("publish", True) is not False


def gate_decision_text(metrics: dict[str, Any] | None) -> str:
    """ "published", "not published: <reason>; <reason>", or why there is no decision yet (plain text)."""
    gate = (metrics or {}).get("gate")
    if not isinstance(gate, dict):
        return "no gate decision yet (the round has not been evaluated)"
    if was_published(gate):
        return "published"
    if gate.get("passed"):
        return "passed, not published (gate.publish: false, e.g. a sweep trial)"
    reasons = [str(reason) for reason in gate.get("reasons") or []]
    return "not published: " + ("; ".join(reasons) or "the gate refused it")


def _win_rate(metrics: dict[str, Any]) -> str:
    win = metrics.get("win_rate")
    if win is None:
        return "—"
    ci = metrics.get("win_rate_ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return f"{win:.3f} (95% CI {ci[0]:.3f}–{ci[1]:.3f})"
    return f"{win:.3f}"


def _length_bias(bias: Any) -> str:
    if not isinstance(bias, dict) or bias.get("correlation") is None:
        return "not measured" if not isinstance(bias, dict) else "no (too few or constant samples)"
    return (
        f"{'ALARM' if bias.get('alarm') else 'no alarm'}: length–reward correlation {_number(bias['correlation'])}, "
        f"length explains {_number(bias.get('explained_gain'))} of the reward gain"
    )


DEGENERATION_ROWS = (
    ("repetition", "4-gram repetition"),
    ("distinct_2", "distinct-2"),
    ("empty_share", "empty answers"),
    ("truncated_share", "cut off at the token limit"),
    ("replacement_share", "answers with U+FFFD"),
    ("mean_chars", "mean characters"),
)


def _adversarial_rows(adversarial: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The adversarial set's held-out prompts, apart from the general ones (none when the round had none)."""
    if not adversarial.get("n_prompts"):
        return []
    return [
        (
            f"win-rate on the adversarial set ({adversarial['n_prompts']} prompts)",
            _win_rate(adversarial),
            "—",
            "",
        )
    ]


def metrics_card(metrics: dict[str, Any] | None) -> str:
    """The evaluation figures as a Markdown table (child vs parent where both exist), after the gate's decision."""
    metrics = metrics or {}
    if not any(key in metrics for key in ("gate", "win_rate", "kl_to_parent", "reward_model", "degeneration")):
        return "No evaluation figures for this version (a registered base, or a reward model without them)."
    gate = _section(metrics, "gate")
    reward_model = _section(metrics, "reward_model")
    rows = [
        ("win-rate vs parent (by the reward model)", _win_rate(metrics), "—", f"≥ {_number(gate.get('min_win_rate'))}"),
        ("KL to parent", _number(metrics.get("kl_to_parent")), "—", ""),
        *_adversarial_rows(_section(metrics, "adversarial")),
        (
            "reward-model held-out accuracy",
            _number(reward_model.get("accuracy"))
            + (f" on {reward_model['n_pairs']} pairs" if "n_pairs" in reward_model else ""),
            "—",
            "",
        ),
        ("mean reward", _number(metrics.get("mean_reward")), _number(metrics.get("parent_mean_reward")), ""),
        (
            "mean length (tokens)",
            _number(metrics.get("mean_length"), 1),
            _number(metrics.get("parent_mean_length"), 1),
            "",
        ),
        ("length bias", _length_bias(metrics.get("length_bias")), "—", ""),
    ]
    degeneration = _section(metrics, "degeneration")
    child, parent = degeneration.get("child") or {}, degeneration.get("parent") or {}
    for key, label in DEGENERATION_ROWS:
        if key in child or key in parent:
            rows.append((label, _number(child.get(key)), _number(parent.get(key)), ""))
    alarms = degeneration.get("alarms") or []
    lines = [
        f"**Gate:** {escape_markdown(gate_decision_text(metrics))}",
        "",
        "| figure | this version | parent | gate |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
    ]
    if alarms:
        lines += ["", "**Degeneration alarms:** " + "; ".join(escape_markdown(str(alarm)) for alarm in alarms)]
    return "\n".join(lines)


def gate_checks_text(metrics: dict[str, Any] | None) -> str:
    """One plain line of each check's value, for the Rounds tab status."""
    metrics = metrics or {}
    reward_model = _section(metrics, "reward_model")
    degeneration = _section(metrics, "degeneration")
    gate = _section(metrics, "gate")
    parts = [
        f"win-rate {_win_rate(metrics)} (needs ≥ {gate.get('min_win_rate', '—')})",
        f"KL {_plain(metrics.get('kl_to_parent'))}",
        f"RM accuracy {_plain(reward_model.get('accuracy'))}",
        f"length bias {'alarm' if (metrics.get('length_bias') or {}).get('alarm') else 'no alarm'}",
        f"degeneration alarms {len(degeneration.get('alarms') or [])}",
    ]
    return " · ".join(parts)


def _section(metrics: dict[str, Any], key: str) -> dict[str, Any]:
    value = metrics.get(key)
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("—" if value is None else str(value))
