"""New candidates from the live version into the annotation queue, off the annotators' path.

Before each fill the policy pool syncs with the store, so a version a round
just published is what the next candidates come from, without a restart. Fills
run one at a time: on an engineer's "Fill queue" click (a queued event) or in a
background thread that tops the queue up when it runs low.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import select

from feedback_app.config import AppConfig
from rlhf.inference.generation import DEFAULTS, check_sampling
from rlhf.models.registry import get_version, live_version
from storage import queue
from storage.crud import StoreError, content_hash, get_or_create_generation
from storage.db import session_scope
from storage.models import Generation, Prompt


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
        self.prioritizer = prioritizer   # rlhf.quality.selection.Prioritizer: new items get their priorities after a fill
        self.sampling = {**DEFAULTS, **config.generation}
        check_sampling(max_new_tokens=self.sampling["max_new_tokens"], temperature=self.sampling["temperature"],
                       top_p=self.sampling["top_p"])
        self._pool = pool
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def pool(self):
        if self._pool is None:
            from rlhf.inference.policy_pool import PolicyPool

            self._pool = PolicyPool()
        return self._pool

    def per_prompt(self) -> int:
        """Enough responses per prompt for every kind in the mix (a ranking wants four)."""
        mix = {kind for kind, share in self.config.mix.items() if share > 0}
        needed = 4 if "ranking" in mix else 2 if "pairwise" in mix else 1
        return max(int(self.sampling["per_prompt"]), needed)

    def _prompts_to_answer(self, version_id: int, limit: int) -> list[tuple[int, str]]:
        with session_scope(self.url) as session:
            answered = select(Generation.prompt_id).where(Generation.model_version_id == version_id)
            return list(session.exec(select(Prompt.id, Prompt.text).where(Prompt.id.not_in(answered))
                                     .order_by(Prompt.id).limit(limit)).all())

    def fill(self, prompts: int | None = None) -> FillReport:
        """Answer up to `prompts` prompts the live version has not answered yet, and queue the answers."""
        with self._lock:
            self.pool.sync_with_store(self.url)
            with session_scope(self.url) as session:
                live = live_version(session)
            if live is None:
                return FillReport(version=None, prompts=0, generated=0)
            todo = self._prompts_to_answer(live.id, prompts or self.config.fill_prompts)
            if not todo:
                return FillReport(version=live.name, prompts=0, generated=0)
            n = self.per_prompt()
            batch = [text for _, text in todo for _ in range(n)]
            name, texts = self.pool.generate(batch, max_new_tokens=self.sampling["max_new_tokens"],
                                             temperature=self.sampling["temperature"], top_p=self.sampling["top_p"],
                                             seed=None, version=live)
            params = {k: self.sampling[k] for k in ("max_new_tokens", "temperature", "top_p")} | {"source": "app"}
            with session_scope(self.url) as session:
                version = get_version(session, name=name)
                created = 0
                for (prompt_id, _), text in zip([p for p in todo for _ in range(n)], texts):
                    if not text.strip():
                        continue
                    before = session.exec(select(func.count()).select_from(Generation).where(
                        Generation.prompt_id == prompt_id, Generation.model_version_id == version.id,
                        Generation.text_hash == content_hash(text))).one()
                    get_or_create_generation(session, prompt_id=prompt_id, text=text,
                                             model_version_id=version.id, params=params)
                    created += 0 if before else 1
                queued = queue.enqueue_mix(session, version_id=version.id, overlap=self.config.overlap,
                                           mix=self.config.mix, prompt_ids=[pid for pid, _ in todo])
            if self.prioritizer is not None and self.config.selection != "random":
                self.prioritizer.refresh()
            return FillReport(version=name, prompts=len(todo), generated=created, queued=queued)

    def open_items(self) -> int:
        with session_scope(self.url) as session:
            return queue.open_count(session)

    def start(self) -> None:
        """Top the queue up in a daemon thread whenever fewer than `low_water` items are open."""
        def loop() -> None:
            while not self._stop.wait(self.config.fill_interval_s):
                try:
                    if self.open_items() < self.config.low_water:
                        self.fill()
                    elif self.prioritizer is not None and self.config.selection != "random":
                        self.prioritizer.refresh()
                    self.last_error = None
                except (StoreError, OSError, RuntimeError, ValueError) as error:
                    self.last_error = f"{type(error).__name__}: {error}"
                    print(f"queue filler: {self.last_error}")

        self._thread = threading.Thread(target=loop, name="queue-filler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
