import pytest
from gradio_client import Client
from sqlmodel import select

from feedback_app.tabs.models import lineage_rows
from feedback_app.tabs.round_metrics import metrics_card
from storage.db import session_scope
from storage.models import ModelVersion
from tests.helpers import PASSWORD, REFUSED_METRICS, add_refused_round, running_app, seed


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


def test_the_metrics_card_shows_the_gate_and_each_figure_as_escaped_text():
    card = metrics_card(
        {**REFUSED_METRICS, "gate": {**REFUSED_METRICS["gate"], "reasons": ["<img src=x> [a](http://e)"]}}
    )
    assert "**Gate:** not published: &lt;img src=x&gt; \\[a\\](http://e)" in card
    assert "| win-rate vs parent (by the reward model) | 0.531 (95% CI 0.410–0.650) | — | ≥ 0.550 |" in card
    assert "| KL to parent | 0.125 |" in card and "| reward-model held-out accuracy | 0.850 on 20 pairs |" in card
    assert "| 4-gram repetition | 0.148 | 0.012 |" in card and "| mean length (tokens) | 14.0 | 12.5 |" in card
    assert "no alarm: length–reward correlation 0.100" in card
    assert metrics_card({}).startswith("No evaluation figures")
    assert "adversarial" not in card  # the round had no adversarial prompts held out
    adversarial = {"n_prompts": 6, "win_rate": 0.75, "win_rate_ci95": [0.41, 0.93]}
    assert "| win-rate on the adversarial set (6 prompts) | 0.750 (95% CI 0.410–0.930) |" in metrics_card(
        {**REFUSED_METRICS, "adversarial": adversarial}
    )


@pytest.fixture(scope="module")
def server(module_store):
    seed(module_store, users={"eng": "engineer", "ann": "annotator"}, prompts=2)
    add_refused_round(module_store, "v0")
    with running_app(module_store) as running:
        yield running


def live(url):
    with session_scope(url) as session:
        return [v.name for v in session.exec(select(ModelVersion).where(ModelVersion.is_live))]


def test_set_live_and_roll_back_take_a_second_click_and_refusals_are_messages(server):
    engineer = Client(server.base, auth=("eng", PASSWORD), verbose=False)
    table, _, message = engineer.predict("dpo-tiny-r1", api_name="/models_set_live")
    assert message == "Click Set live again to confirm: dpo-tiny-r1 becomes the live version (now: v0)."
    assert live(server.url) == ["v0"]
    other = Client(server.base, auth=("eng", PASSWORD), verbose=False)  # another page is not armed by this one
    *_, message = other.predict("dpo-tiny-r1", api_name="/models_set_live")
    assert message.startswith("Click Set live again") and live(server.url) == ["v0"]
    table, _, message = engineer.predict("dpo-tiny-r1", api_name="/models_set_live")
    assert message == "dpo-tiny-r1 is live (set by eng)." and live(server.url) == ["dpo-tiny-r1"]
    assert [row[8] for row in table["value"]["data"]] == ["", "refused"]  # the gate column

    *_, message = engineer.predict(api_name="/models_rollback")
    assert message == "Click Roll back again to confirm: v0 becomes live in place of dpo-tiny-r1."
    assert live(server.url) == ["dpo-tiny-r1"]
    *_, message = engineer.predict(api_name="/models_rollback")
    assert message == "rolled back from dpo-tiny-r1 to v0." and live(server.url) == ["v0"]

    *_, message = engineer.predict(api_name="/models_rollback")
    assert message == "Roll back: the live version has no parent to go back to."
    *_, message = engineer.predict("v9", api_name="/models_set_live")
    assert message == "Set live: no version named 'v9'."
    *_, message = engineer.predict("v0", api_name="/models_set_live")
    assert message == "v0 is already live."

    card = engineer.predict("dpo-tiny-r1", api_name="/models_card")
    assert card.startswith("### dpo-tiny-r1") and "not published: win-rate 0.531 &lt; 0.55" in card
    annotator = Client(server.base, auth=("ann", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="annotator cannot do this"):
        annotator.predict("dpo-tiny-r1", api_name="/models_card")
