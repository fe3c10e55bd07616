"""Import 100k judgments from JSONL into a fresh SQLite store, then export them as a preference dataset.

    python bench/import_export.py [--judgments 100000]

Goal (issue 3): export of 100k judgments in under 5 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path

from storage.db import dispose_engines
from storage.export import ExportOptions, export_dataset
from storage.imports import import_judgments
from storage.migrate import upgrade


def synthetic_judgments(path: Path, n: int, seed: int = 0) -> None:
    """Mostly pairwise (5 annotators per pair), some rankings, ratings and corrections."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        written = 0
        prompt = 0
        while written < n:
            text = f"Prompt number {prompt}: describe item {rng.randrange(10**6)}."
            responses = [f"Response {k} to prompt {prompt}: " + "word " * rng.randrange(5, 40) for k in range(4)]
            for annotator in rng.sample(range(40), 5):
                record = {
                    "kind": "pairwise",
                    "annotator": f"ann{annotator}",
                    "prompt": text,
                    "a": responses[0],
                    "b": responses[1],
                    "choice": rng.choice("aab") if rng.random() > 0.1 else "tie",
                    "duration_ms": rng.randrange(500, 9000),
                }
                handle.write(json.dumps(record) + "\n")
            handle.write(
                json.dumps({"kind": "ranking", "annotator": "ann1", "prompt": text, "responses": responses}) + "\n"
            )
            handle.write(
                json.dumps(
                    {
                        "kind": "rating",
                        "annotator": "ann2",
                        "prompt": text,
                        "response": responses[2],
                        "score": rng.randint(1, 5),
                    }
                )
                + "\n"
            )
            handle.write(
                json.dumps(
                    {
                        "kind": "correction",
                        "annotator": "ann3",
                        "prompt": text,
                        "response": responses[3],
                        "corrected": responses[3] + " (fixed)",
                    }
                )
                + "\n"
            )
            written += 8
            prompt += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "judgments.jsonl"
        synthetic_judgments(source, args.judgments)
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(url)

        started = time.perf_counter()
        report = import_judgments(source, url=url)
        import_seconds = time.perf_counter() - started

        started = time.perf_counter()
        manifest = export_dataset(tmp / "export", ExportOptions(kind="preference", formats=("jsonl",)), url=url)
        export_seconds = time.perf_counter() - started

        started = time.perf_counter()
        export_dataset(tmp / "export-parquet", ExportOptions(kind="preference", formats=("parquet",)), url=url)
        parquet_seconds = time.perf_counter() - started
        dispose_engines()

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"import: {report.created} judgments in {import_seconds:.2f}s ({report.created / import_seconds:,.0f}/s)")
    print(
        f"export preference jsonl: {manifest['judgments']['count']} judgments -> "
        f"{sum(manifest['counts'].values())} pairs in {export_seconds:.2f}s (goal < 5 s)"
    )
    print(f"export preference parquet: {parquet_seconds:.2f}s")
    print(f"left out: {manifest['left_out']}")


if __name__ == "__main__":
    main()
