"""A real app server per test module: a SQLite file, seeded users and queue, Gradio on a free local port.

The helpers (seed, running_app, PASSWORD, ...) are in tests/helpers.py; this file only defines fixtures.
"""

from __future__ import annotations

import pytest

from storage.migrate import upgrade


@pytest.fixture(scope="module")
def module_store(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'store.db'}"
    upgrade(url)
    return url
