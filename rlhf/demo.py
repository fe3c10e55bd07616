"""`rlhf demo`: the loop, offline, on the tiny model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

BUNDLED_PROMPTS = Path(__file__).parent / "data" / "prompts.jsonl"


def run_demo(args) -> None:
    from rlhf.modeling import init_tiny
    from storage.export import ExportOptions, export_dataset
    from storage.imports import import_prompts
    from storage.migrate import upgrade

    workdir: Path = args.workdir
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir.resolve() / 'rlhf.db'}"

    started = time.perf_counter()
    print(f"[1] store: {url} (schema {upgrade(url)})")
    model_dir = workdir / "models" / "tiny-base"
    if not model_dir.exists():
        init_tiny(model_dir)
    print(f"[2] tiny offline policy: {model_dir}")
    print(f"[3] prompts: {import_prompts(BUNDLED_PROMPTS, url=url, source='bundled').summary()}")
    out = workdir / "exports" / f"prompts-{int(time.time())}"
    manifest = export_dataset(out, ExportOptions(kind="prompt", test_fraction=0.1), url=url)
    print(f"[4] exported prompt dataset to {out}: {manifest['counts']}")
    print(f"done in {time.perf_counter() - started:.1f}s")
