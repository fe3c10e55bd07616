"""Run `rlhf.training.recipe` with a pause at one named point, so a test can SIGKILL it exactly there.

The round code offers no crash hook, so this wrapper patches it from outside:
`python -c "import crash_hooks; crash_hooks.main()" ROUND_ID --db URL` with
CRASH_POINT (export | sft | reward | dpo | register) and CRASH_MARKER (a file
the wrapper creates when it has paused) in the environment. The command line
contains "rlhf.training.recipe", as the runner's liveness check expects.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

POINT = os.environ.get("CRASH_POINT", "")
MARKER = Path(os.environ.get("CRASH_MARKER", "/nonexistent/marker"))
RUN = "import crash_hooks, rlhf.training.recipe; crash_hooks.main()"


def pause(where: str) -> None:
    """Say where we are, then wait for the SIGKILL."""
    MARKER.write_text(where)
    while True:
        time.sleep(60)


def install() -> None:
    real_replace = os.replace
    renames = []

    def replace(src, dst, *args, **kwargs):
        name = Path(dst).name
        if POINT == "export" and Path(dst).parent.name == "data":
            renames.append(name)
            if len(renames) == 2:
                pause(f"export: {name} written to its temp folder, not renamed")
        real_replace(src, dst, *args, **kwargs)
        if POINT == "register" and re.fullmatch(r".+-r\d+", name):
            pause(f"register: {name} renamed into the registry, version not committed")

    os.replace = replace

    from rlhf.training.progress import TrainerProgress

    real_on_log = TrainerProgress.on_log

    def on_log(self, args, state, control, logs=None, **kwargs):
        real_on_log(self, args, state, control, logs=logs, **kwargs)
        if self.stage == POINT and state.global_step >= 1:
            pause(f"{POINT}: step {state.global_step} of {state.max_steps}")

    TrainerProgress.on_log = on_log


def main() -> None:
    import rlhf.training.recipe

    install()
    sys.exit(rlhf.training.recipe.main(sys.argv[1:]))
