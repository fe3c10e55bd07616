"""The Red-team tab and the annotation tabs' flag box over HTTP: a tried answer is what gets flagged, the flag names
the response shown in that place, the set is listed as text, and only annotators use it."""

from __future__ import annotations

import pytest
from gradio_client import Client
from sqlmodel import select

from feedback_app import safe_markdown
from rlhf.models.registry import register_version
from storage.db import session_scope
from storage.models import AdversarialPrompt, FailureFlag, ModelVersion, Prompt
from tests.helpers import PASSWORD, XSS, running_app, seed

USERS = {"ann": "annotator", "bob": "annotator", "rev": "reviewer"}


@pytest.fixture(scope="module")
def server(module_store, tiny_model_dir):
    seed(module_store, users=USERS, prompts=3, overlap=2)
    with session_scope(module_store) as session:
        register_version(
            session, name="v1", base_model=str(tiny_model_dir), artifact_path=str(tiny_model_dir), make_live=True
        )
    with running_app(module_store) as running:
        yield running


def client(server, user):
    return Client(server.base, auth=(user, PASSWORD), verbose=False)


def test_a_tried_answer_is_flagged_as_the_model_gave_it(server):
    ann = client(server, "ann")
    with pytest.raises(Exception, match="Try the prompt first"):
        ann.predict("", "wrong", "", api_name="/redteam_flag")
    shown, token, status = ann.predict("Say something false about rivers.", api_name="/redteam_try")
    assert "v1 answered" in shown and token and "flag it" in status
    with pytest.raises(Exception, match="category: pick one of unsafe, wrong, refusal"):
        ann.predict(token, None, "", api_name="/redteam_flag")
    table, said, note = ann.predict(token, "wrong", "made up a river", api_name="/redteam_flag")
    assert "Flagged as wrong answer" in said and "Say something false about rivers." in table and note == ""
    with session_scope(server.url) as session:
        [flag] = session.exec(select(FailureFlag).where(FailureFlag.generation_id.is_(None))).all()  # type: ignore[union-attr]
        prompt = session.get_one(Prompt, flag.prompt_id)
        live = session.exec(select(ModelVersion).where(ModelVersion.name == "v1")).one()
        assert prompt.text == "Say something false about rivers." and prompt.source == "red-team:ann"
        assert (flag.category, flag.note, flag.model_version_id) == ("wrong", "made up a river", live.id)
        assert flag.response == server.ctx.sealer.load(token)["response"]  # the answer sealed in the page…
        assert safe_markdown.render(flag.response) in shown  # …which is the one shown
        assert session.get_one(AdversarialPrompt, prompt.id).origin == "written"  # a red-teamer wrote it
    with pytest.raises(Exception, match="another view or user"):
        client(server, "bob").predict(token, "unsafe", "", api_name="/redteam_flag")  # not bob's answer


def test_the_set_lists_prompts_as_text_and_only_annotators_add_to_it(server):
    table, said = client(server, "bob").predict(f"Repeat after me: {XSS}", api_name="/redteam_add")
    assert "to the adversarial set" in said
    assert "<script" not in table and "&lt;script&gt;" in table
    with pytest.raises(Exception, match="a reviewer cannot do this"):
        client(server, "rev").predict("Anything", api_name="/redteam_add")
    with pytest.raises(Exception, match="write the prompt"):
        client(server, "bob").predict("   ", api_name="/redteam_add")


def test_a_flag_from_compare_names_the_response_shown_in_that_place(server):
    ann = client(server, "ann")
    prompt, left, right, token, *_ = ann.predict(api_name="/pairwise_next")
    with pytest.raises(Exception, match="Pick the response that failed"):
        ann.predict(token, None, "unsafe", "", api_name="/pairwise_flag")
    said, note = ann.predict(token, 1, "refusal", "refused to add", api_name="/pairwise_flag")
    assert "adversarial set" in said and note == ""
    with session_scope(server.url) as session:
        flag = session.exec(select(FailureFlag).where(FailureFlag.category == "refusal")).one()
        assert flag.response == right and flag.generation_id is not None
        assert session.get_one(Prompt, flag.prompt_id).text == prompt
    with pytest.raises(Exception, match="another view or user"):
        client(server, "bob").predict(token, 0, "wrong", "", api_name="/pairwise_flag")
