"""Import an Argilla 2.x Hub export (parquet, flat columns) of N records × 3 annotators into a fresh SQLite store,
then import it again (every response a duplicate).

    python bench/argilla_import.py [--records 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.argilla import import_argilla
from storage.db import dispose_engines
from storage.migrate import upgrade


def write_export(folder: Path, n: int, seed: int = 0) -> None:
    """The columns `records.to_datasets()` builds for fields prompt/response1/response2 and questions
    preference (label_selection) and why (text), as `Dataset.to_hub` pushes them."""
    rng = random.Random(seed)
    users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3)]
    (folder / ".argilla").mkdir(parents=True)
    (folder / "data").mkdir()
    options = [{"text": v, "value": v} for v in ("response1", "response2", "tie")]

    def prop(name: str, kind: str, **settings) -> dict:
        return {"name": name, "title": name, "required": True, "settings": {"type": kind, **settings}, "type": kind}

    settings = {
        "fields": [prop(name, "text", use_markdown=False) for name in ("prompt", "response1", "response2")],
        "questions": [prop("preference", "label_selection", options=options), prop("why", "text")],
    }
    (folder / ".argilla" / "settings.json").write_text(json.dumps(settings))
    (folder / ".argilla" / "dataset.json").write_text(json.dumps({"id": str(uuid.uuid4()), "name": "bench"}))
    columns: dict[str, list] = {key: [] for key in ("id", "status", "prompt", "response1", "response2")}
    for question in ("preference", "why"):
        for suffix in ("", ".users", ".status"):
            columns[f"{question}.responses{suffix}"] = []
    for i in range(n):
        columns["id"].append(f"rec-{i}")
        columns["status"].append("completed")
        columns["prompt"].append(f"Prompt {i}: describe item {rng.randrange(10**6)}.")
        columns["response1"].append(f"First answer to {i}: " + "word " * rng.randrange(5, 40))
        columns["response2"].append(f"Second answer to {i}: " + "word " * rng.randrange(5, 40))
        columns["preference.responses"].append(
            [rng.choice(("response1", "response1", "response2", "tie")) for _ in users]
        )
        columns["why.responses"].append([f"reason {rng.randrange(100)}" for _ in users])
        for question in ("preference", "why"):
            columns[f"{question}.responses.users"].append(list(users))
            columns[f"{question}.responses.status"].append(["submitted"] * len(users))
    pq.write_table(pa.table(columns), folder / "data" / "train-00000-of-00001.parquet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        write_export(folder, args.records)
        url = f"sqlite:///{Path(tmp) / 'store.db'}"
        upgrade(url)
        for label in ("first import", "re-import"):
            start = time.perf_counter()
            report = import_argilla(folder, url=url)
            seconds = time.perf_counter() - start
            print(f"{label}: {report.summary()} in {seconds:.1f} s ({report.records / seconds:,.0f} responses/s)")
        dispose_engines()


if __name__ == "__main__":
    main()
