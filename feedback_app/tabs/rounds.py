"""Engineers: start a round from a config, watch its stage, progress, loss/reward and log, cancel it;
see each `rlhf sweep`'s trials (their rounds are listed with the others).

The refresh is a private gr.Timer tick that reads one Round row and the new
part of its log; the timer only runs for users who may see this tab.
"""

from __future__ import annotations

import glob
import json
from dataclasses import asdict
from pathlib import Path

import gradio as gr
from matplotlib.figure import Figure

from feedback_app.context import AppContext
from feedback_app.filler import describe
from feedback_app.roles import ENGINEER
from feedback_app.tabs import TabView
from feedback_app.tabs.round_metrics import gate_checks_text, gate_decision_text, was_published
from rlhf.jobs import runner, sweep
from rlhf.jobs.preview import config_label, preview_round
from storage.crud import StoreError
from storage.db import read_scope
from storage.stats import data_summary

PLOTTED = ("loss", "reward", "reward_accuracy", "kl")


class LogReader:
    """Reads a round's JSON-lines log incrementally: plot points and the last lines."""

    def __init__(self):
        self._cache: dict[str, tuple[int, list[dict], list[str]]] = {}

    def read(self, path: str | None, tail: int) -> tuple[list[dict], list[str]]:
        if not path or not Path(path).is_file():
            return [], []
        offset, points, lines = self._cache.get(path, (0, [], []))
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        for raw in complete.decode("utf-8", errors="replace").splitlines():
            lines.append(raw)
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if record.get("event") == "train":
                for key in PLOTTED:
                    if isinstance(record.get(key), (int, float)):
                        step = record.get("step")
                        points.append(
                            {
                                "point": len(points),
                                "step": step if isinstance(step, (int, float)) else len(points),
                                "value": float(record[key]),
                                "stage": str(record.get("stage", "?")),
                                "metric": key,
                            }
                        )
        lines = lines[-tail:]
        self._cache[path] = (offset + len(complete), points, lines)
        return points, lines


def ema(values: list[float], smoothing: float) -> list[float]:
    """Exponential moving average (TensorBoard's smoothing): 0 leaves the values as they are."""
    out, last = [], None
    for value in values:
        last = value if last is None else smoothing * last + (1 - smoothing) * value
        out.append(last)
    return out


def loss_figure(points: list[dict], smoothing: float = 0.0) -> Figure | None:
    """A grid of panels, one row per metric and one column per stage, x = the stage's training step.

    Each stage restarts its step count, so stages get their own columns rather than one shared axis.
    With `smoothing` > 0 the raw values are drawn faint behind their EMA. Drawn with matplotlib's
    object API (thread-safe, no pyplot state); None before the first point.
    """
    if not points:
        return None
    metrics = [m for m in PLOTTED if any(p["metric"] == m for p in points)]
    stages = list(dict.fromkeys(p["stage"] for p in points))
    figure = Figure(figsize=(max(5, 3.4 * len(stages)), 1.9 * len(metrics) + 0.6), layout="constrained")
    grid = figure.subplots(len(metrics), len(stages), squeeze=False)
    for row, metric in enumerate(metrics):
        for column, stage in enumerate(stages):
            axis = grid[row][column]
            mine = [p for p in points if p["metric"] == metric and p["stage"] == stage]
            steps, values = [p["step"] for p in mine], [p["value"] for p in mine]
            if smoothing > 0 and values:
                axis.plot(steps, values, alpha=0.3, color="C0", label="raw")
                axis.plot(steps, ema(values, smoothing), color="C0", label=f"EMA {smoothing:g}")
            elif values:
                axis.plot(steps, values, marker=".", color="C0", label=metric)
            else:
                axis.set_axis_off()
            axis.set_title(f"{stage}: {metric}", fontsize=9)
            axis.set_xlabel("training step", fontsize=8)
            axis.set_ylabel(metric, fontsize=8)
            axis.tick_params(labelsize=7)
    return figure


def round_configs(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


def _label(row) -> str:
    """`#3 round_dpo.yaml by eng · not published`: a round the gate refused never reads as plain "succeeded"."""
    label = f"#{row.id} {Path(row.config_path or 'config').name}" + (f" by {row.created_by}" if row.created_by else "")
    gate = (row.metrics or {}).get("gate")
    if row.status == "succeeded" and isinstance(gate, dict):
        return label + (" · published" if was_published(gate) else " · not published")
    return f"{label} · {row.status}"


def log_line(raw: str) -> str:
    """One log record as `time event k=v ...` (nested details left out); unparsable lines as they are."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if not isinstance(record, dict):
        return raw
    when = str(record.pop("time", ""))[11:19]
    event = record.pop("event", "")
    fields = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in record.items()
        if not isinstance(v, (dict, list)) and v is not None
    )
    return f"{when} {event} {fields}".strip()


def status_text(row) -> str:
    if row is None:
        return "No round yet."
    p = row.progress or {}
    metrics = getattr(row, "metrics", None) or {}
    gate = metrics.get("gate")
    shown = row.status
    if row.status == "succeeded" and isinstance(gate, dict):
        shown = "succeeded, published" if was_published(gate) else "trained, not published"
    parts = [f"round {row.id}: {shown}", f"stage {row.stage or p.get('stage') or '-'}"]
    if p.get("total"):
        parts.append(f"step {p.get('step', 0)}/{p['total']} ({100 * (p.get('step') or 0) / p['total']:.0f}%)")
    if p.get("eta_s") is not None and row.status == "running":
        parts.append(f"eta {p['eta_s']:.0f} s")
    for key in PLOTTED:
        if isinstance(p.get(key), (int, float)):
            parts.append(f"{key} {p[key]:.4g}")
    text = " · ".join(parts)
    if row.status == "succeeded" or gate:
        text += f"\ngate: {gate_decision_text(metrics)}"
        if gate:
            text += f"\nchecks: {gate_checks_text(metrics)}"
    if row.completed_stages:
        text += "\ncompleted: " + ", ".join(row.completed_stages)
    if row.error:
        text += f"\nerror: {row.error}"
    return text


def build(ctx: AppContext) -> TabView:
    reader = LogReader()
    with gr.Tab("Rounds", id="rounds", visible=False, elem_id="tab-rounds") as tab:
        with gr.Row():
            config = gr.Dropdown(
                label="Round config",
                choices=[(config_label(path), path) for path in round_configs(ctx.config.round_configs)],
                elem_id="rounds-config",
            )
            start = gr.Button("Start round", variant="primary", elem_id="rounds-start")
        preview = gr.Textbox(
            label="What this round would use now", interactive=False, lines=4, elem_id="rounds-preview"
        )
        message = gr.Textbox(label="Result", interactive=False, elem_id="rounds-message")
        with gr.Row():
            chosen = gr.Dropdown(label="Round", choices=[], allow_custom_value=True, elem_id="rounds-chosen")
            cancel = gr.Button("Cancel round", variant="stop", elem_id="rounds-cancel")
        status = gr.Textbox(label="Status", interactive=False, lines=4, elem_id="rounds-status")
        smoothing = gr.Number(
            0.0,
            minimum=0,
            maximum=0.95,
            step=0.05,
            label="Smoothing: EMA weight, 0 (raw) to 0.95",
            elem_id="rounds-smoothing",
        )  # a Number, not a Slider: a Slider fails a None (a stray API call) before the role check can answer
        plot = gr.Plot(label="Loss and reward by training step", elem_id="rounds-plot")
        log = gr.Textbox(
            label="Log (latest lines)",
            interactive=False,
            lines=8,
            max_lines=ctx.config.log_tail_lines,
            autoscroll=True,
            elem_id="rounds-log",
        )
        gr.Markdown("### Sweeps (`rlhf sweep`): one round per trial, none live unless `--live`; ★ the best feasible")
        sweeps = gr.Dataframe(
            headers=list(sweep.SWEEP_COLUMNS), interactive=False, wrap=True, label="Trials", elem_id="rounds-sweeps"
        )
        refresh_sweeps = gr.Button("Refresh sweeps", elem_id="rounds-refresh-sweeps")
        gr.Markdown("### Data available")
        with gr.Row():
            data = gr.JSON(label="Judgments", elem_id="rounds-data")
            with gr.Column():
                fill_button = gr.Button("Fill queue from the live version", elem_id="rounds-fill")
                refresh_data = gr.Button("Refresh data", elem_id="rounds-refresh-data")
                fill_result = gr.Textbox(label="Queue", interactive=False, elem_id="rounds-fill-result")
        timer = gr.Timer(ctx.config.timer_s, active=False)
        drawn = gr.State(None)  # which (round, points) this page's plot shows

    def _choices():
        rows = runner.list_rounds(ctx.url)
        return [(_label(r), r.id) for r in reversed(rows)], rows

    def _watch(round_id, drawn=None, smooth=0.0):
        """Status, plot and log of a round; the plot only when this page has not drawn these points yet."""
        row = None
        if round_id:
            row = runner.get_round(int(round_id), ctx.url)
        points, lines = reader.read(row.log_path if row else None, ctx.config.log_tail_lines)
        smooth = min(max(float(smooth or 0.0), 0.0), 0.95)
        key = [row.id if row else None, len(points), smooth]
        figure = gr.skip() if drawn == key else loss_figure(points, smooth)
        return status_text(row), figure, "\n".join(log_line(line) for line in lines), key

    def _data():
        with read_scope(ctx.url) as session:
            summary = data_summary(session)
        values = asdict(summary)
        filler = ctx.filler
        if filler is not None and filler.last_error and filler.last_error_at:
            values["queue_filler"] = (
                f"failing since {filler.last_error_at:%Y-%m-%d %H:%M:%S} UTC, retrying: {filler.last_error}"
            )
        return values

    def _sweeps():
        """The trials table; a store whose study tables cannot be read says why in the label, not as an Error."""
        try:
            rows = sweep.sweep_table(ctx.url)
        except StoreError as error:
            return gr.Dataframe(value={"headers": list(sweep.SWEEP_COLUMNS), "data": []}, label=f"Trials: {error}")
        return gr.Dataframe(value={"headers": list(sweep.SWEEP_COLUMNS), "data": rows}, label="Trials")

    def fill(user):
        choices, rows = _choices()
        latest = rows[-1].id if rows else None
        return [gr.Dropdown(choices=choices, value=latest), *_watch(latest), _data(), gr.Timer(active=True), _sweeps()]

    @ctx.guard.requires(ENGINEER)
    def tick(round_id, shown, smooth, user):
        return _watch(round_id, shown, smooth)

    @ctx.guard.requires(ENGINEER)
    def show_preview(config_path, user):
        if not config_path:
            return ""
        if config_path not in round_configs(ctx.config.round_configs):
            return f"Round config: {config_path!r} is not one of the offered configs."
        try:
            return preview_round(config_path, ctx.url).summary()
        except (StoreError, ValueError) as error:  # a broken config or store: the reason, not an Error badge
            return f"No preview: {error}"

    @ctx.guard.requires(ENGINEER)
    def start_round(config_path, user):
        """Refusals (no config, a round already active on the parent, a broken config) come back as the Result
        message and leave the round view as it is: a raised error would cover it with Error badges."""
        skip = [gr.skip()] * 5
        if not config_path:
            return *skip, "Round config: pick one first."
        if config_path not in round_configs(ctx.config.round_configs):
            return *skip, f"Round config: {config_path!r} is not one of the offered configs."
        try:
            round_id = runner.start_round(config_path, ctx.url, created_by=user.username)
        except (StoreError, ValueError) as error:
            return *skip, f"Not started: {error}"
        choices, _ = _choices()
        return gr.Dropdown(choices=choices, value=round_id), *_watch(round_id), f"Round {round_id} started."

    @ctx.guard.requires(ENGINEER)
    def cancel_round(round_id, user):
        skip = [gr.skip()] * 4
        if not round_id:
            return *skip, "Round: pick one first."
        try:
            runner.cancel_round(int(round_id), ctx.url)
        except (StoreError, ValueError) as error:
            return *skip, f"Not cancelled: {error}"
        return *_watch(round_id), f"Round {round_id} cancelled."

    @ctx.guard.requires(ENGINEER)
    def fill_queue(user):
        if ctx.filler is None:
            return "This app runs without candidate generation (no queue filler).", gr.skip()
        try:
            report = ctx.filler.fill()
        except Exception as error:  # a corrupt or missing live model: say so in one line, the page stays usable
            return f"Filling the queue failed: {describe(error)}", gr.skip()
        return report.summary(), _data()

    @ctx.guard.requires(ENGINEER)
    def refresh(user):
        return _data()

    @ctx.guard.requires(ENGINEER)
    def show_sweeps(user):
        return _sweeps()

    watched = [status, plot, log, drawn]
    outputs = [chosen, *watched, data, timer, sweeps]
    tab.select(ctx.guard.requires(ENGINEER)(fill), None, outputs, api_name="rounds_show", concurrency_limit=4)
    watch_inputs = [chosen, drawn, smoothing]
    chosen.change(tick, watch_inputs, watched, api_visibility="private", concurrency_limit=4, show_progress="hidden")
    timer.tick(tick, watch_inputs, watched, api_visibility="private", concurrency_limit=4, show_progress="hidden")
    smoothing.change(tick, watch_inputs, watched, api_visibility="private", concurrency_limit=4)
    config.change(show_preview, config, preview, api_name="round_preview", concurrency_limit=2)
    start.click(start_round, config, [chosen, *watched, message], api_name="start_round", concurrency_limit=1)
    cancel.click(cancel_round, chosen, [*watched, message], api_name="cancel_round", concurrency_limit=1)
    fill_button.click(fill_queue, None, [fill_result, data], api_name="fill_queue", concurrency_limit=1)
    refresh_data.click(refresh, None, data, api_name="data_summary", concurrency_limit=2)
    refresh_sweeps.click(show_sweeps, None, sweeps, api_name="sweeps", concurrency_limit=2)
    return TabView(tab=tab, capability=ENGINEER, outputs=outputs, fill=fill)
