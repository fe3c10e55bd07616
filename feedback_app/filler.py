"""New candidates from the live version into the annotation queue, off the annotators' path.

Before each fill the policy pool syncs with the store, so a version a round
just published is what the next candidates come from, without a restart. Fills
run one at a time: on an engineer's "Fill queue" click (a queued event) or in a
background thread that tops the queue up when it runs low.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from feedback_app.config import AppConfig
from rlhf.inference.generation import (
    DEFAULTS,
    MAX_ATTEMPTS,
    Prompted,
    answer_prompts,
    check_sampling,
    unanswered_prompts,
)
from rlhf.models.registry import live_version
from storage import queue
from storage.crud import StoreError
from storage.db import read_scope, session_scope
from storage.models import ModelVersion

MAX_BACKOFF_S = 600.0


@dataclass(frozen=True)
class FillReport:
    version: str | None
    prompts: int
    generated: int
    queued: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.version is None:
            return "No live version: register one and set it live first."
        queued = ", ".join(f"{n} {kind}" for kind, n in self.queued.items() if n) or "nothing"
        return f"{self.version}: {self.generated} new responses to {self.prompts} prompts; queued {queued}."


class QueueFiller:
    def __init__(self, url: str, config: AppConfig, pool=None, prioritizer=None):
        self.url = url
        self.config = config
        self.prioritizer = (
            prioritizer  # rlhf.quality.selection.Prioritizer: new items get their priorities after a fill
        )
        self.sampling = {**DEFAULTS, **config.generation}
        check_sampling(
            max_new_tokens=self.sampling["max_new_tokens"],
            temperature=self.sampling["temperature"],
            top_p=self.sampling["top_p"],
        )
        self._pool = pool
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.failures = 0

    @property
    def pool(self):
        if self._pool is None:
            from rlhf.inference.policy_pool import PolicyPool

            self._pool = PolicyPool()
        return self._pool

    def passes(self, prompts: int) -> list[tuple[dict[str, float], int, int]]:
        """(mix, responses per prompt, prompts) for each generation pass. Only the ranking share's prompts are
        answered four times: answering every prompt four times for a 5% share doubled the real model's fill."""
        mix = {kind: share for kind, share in self.config.mix.items() if share > 0}
        base = max(int(self.sampling["per_prompt"]), 2 if "pairwise" in mix else 1)
        if "ranking" not in mix:
            return [(mix, base, prompts)]
        if len(mix) == 1:
            return [(mix, max(base, 4), prompts)]
        ranked = min(prompts, max(1, round(prompts * mix["ranking"] / sum(mix.values()))))
        rest = {kind: share for kind, share in mix.items() if kind != "ranking"}
        return [p for p in [({"ranking": 1.0}, max(base, 4), ranked), (rest, base, prompts - ranked)] if p[2] > 0]

    def fill(self, prompts: int | None = None) -> FillReport:
        """Answer up to `prompts` prompts the live version has not answered yet, and queue the answers."""
        with self._lock:
            self.pool.sync_with_store(self.url)
            with read_scope(self.url) as session:
                live = live_version(session)
                if live is None or live.id is None:
                    return FillReport(version=None, prompts=0, generated=0)
                # The shares split the prompts this fill will answer, not its limit: 5% of 256 for ranking took
                # 13 of a 24-prompt store.
                fresh = min(prompts or self.config.fill_prompts, unanswered_prompts(session, live.id))
            sampling = {k: self.sampling[k] for k in ("max_new_tokens", "temperature", "top_p")}

            def generate(texts: list[Prompted], seed: int | None) -> list[str]:
                return self.pool.generate(texts, **sampling, seed=seed, version=live)[1]

            answered_prompts, generated, queued_by_kind = 0, 0, Counter[str]()
            for mix, per_prompt, limit in self.passes(fresh):
                answered = answer_prompts(
                    self.url,
                    version=live,
                    generate=generate,
                    per_prompt=per_prompt,
                    params=sampling | {"source": "app"},
                    fresh_limit=limit,
                    batch_size=int(self.sampling["batch_size"]),
                    attempts=MAX_ATTEMPTS if sampling["temperature"] > 0 else 1,
                )
                if not answered.prompt_ids:
                    continue
                with session_scope(self.url) as session:
                    queued = queue.enqueue_mix(
                        session,
                        version_id=live.id,
                        overlap=self.config.overlap,
                        mix=mix,
                        prompt_ids=answered.prompt_ids,
                        agreement_share=self.config.agreement_share,
                        agreement_overlap=self.config.agreement_overlap,
                    )
                answered_prompts += len(answered.prompt_ids)
                generated += answered.created
                queued_by_kind.update(queued)
            if self.prioritizer is not None and self.config.selection != "random" and answered_prompts:
                self.prioritizer.refresh()
            return FillReport(
                version=live.name, prompts=answered_prompts, generated=generated, queued=dict(queued_by_kind)
            )

    def try_prompt(self, prompt: str) -> tuple[ModelVersion, str]:
        """The live version's answer to one prompt, with the fill's sampling; nothing is stored (the Red-team tab
        shows it, and a flag keeps it)."""
        with self._lock:
            self.pool.sync_with_store(self.url)
            with read_scope(self.url) as session:
                live = live_version(session)
            if live is None:
                raise StoreError("No live model yet: register a version and set it live first.")
            sampling = {k: self.sampling[k] for k in ("max_new_tokens", "temperature", "top_p")}
            return live, self.pool.generate([prompt], **sampling, seed=None, version=live)[1][0]

    def open_items(self) -> int:
        with read_scope(self.url) as session:
            return queue.open_count(session)

    def top_up(self) -> bool:
        """One background attempt: fill when fewer than `low_water` items are open; False if it failed.

        Any failure (a corrupt weights file raises safetensors' own error type, not OSError) is printed
        in one line and kept in `last_error`/`last_error_at` for the app to show, never raised: the
        thread must outlive it, since restoring the file or a new live version makes the next try work.
        """
        try:
            if self.open_items() < self.config.low_water:
                self.fill()
            elif self.prioritizer is not None and self.config.selection != "random":
                self.prioritizer.refresh()
        except Exception as error:
            self.last_error = describe(error)
            self.last_error_at = datetime.now(UTC)
            self.failures += 1
            print(f"queue filler: {self.last_error} (retrying in {self.delay():.0f} s)", flush=True)
            return False
        self.last_error, self.last_error_at, self.failures = None, None, 0
        return True

    def delay(self) -> float:
        """Seconds until the next attempt: the fill interval, doubled after each failure in a row (at most 10 min)."""
        return min(self.config.fill_interval_s * 2**self.failures, max(MAX_BACKOFF_S, self.config.fill_interval_s))

    def start(self) -> None:
        """Top the queue up in a daemon thread whenever fewer than `low_water` items are open."""

        def loop() -> None:
            while not self._stop.wait(self.delay()):
                self.top_up()

        self._thread = threading.Thread(target=loop, name="queue-filler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def describe(error: BaseException) -> str:
    """An error in one line, its type and its first line: for the log and the app."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
