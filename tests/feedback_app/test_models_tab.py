from feedback_app.tabs.models import lineage_rows
from storage.db import session_scope
from storage.models import ModelVersion


def test_lineage_rows_nest_each_generation_deeper(sqlite_url):
    with session_scope(sqlite_url) as session:
        parent_id = None
        for name in ("base", "r1", "r2"):
            version = ModelVersion(
                name=name,
                base_model="tiny",
                artifact_path="/nowhere",
                status="ready",
                parent_id=parent_id,
                is_live=name == "r2",
            )
            session.add(version)
            session.flush()
            parent_id = version.id
    rows, ready = lineage_rows(sqlite_url)
    assert [row[0] for row in rows] == ["base", "└ r1", "\u00a0\u00a0\u00a0└ r2"]
    assert [row[2] for row in rows] == ["", "base", "r1"] and rows[2][4] == "LIVE"
    assert ready == ["base", "r1", "r2"]
