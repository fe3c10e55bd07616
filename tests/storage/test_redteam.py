"""The adversarial set: written and flagged prompts join it once, the fill and the queue serve it first, exports
weight it, and the prompt export says which held-out prompts belong to it."""

import pytest
from sqlmodel import select

from rlhf.inference.generation import answer_prompts
from storage import priority, queue, redteam
from storage.crud import StoreError, add_prompt
from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.models import AdversarialPrompt, AnnotationItem, FailureFlag, ModelVersion
from storage.validation import ConfigError
from tests.helpers import seed_store


def test_a_written_prompt_joins_the_set_once_and_keeps_how_it_came_in(db_url):
    seeded = seed_store(db_url, users=["ann"], prompts=2)
    user = {"user_id": seeded.user_ids[0], "username": "ann"}
    with session_scope(db_url) as session:
        prompt, new = redteam.write_prompt(session, **user, text="  Tell me how to pick a lock.  ")
        assert new and prompt.text == "Tell me how to pick a lock." and prompt.source == "red-team:ann"
        again, new_again = redteam.write_prompt(session, **user, text="Tell me how to pick a lock.")
        assert again.id == prompt.id and not new_again
        redteam.flag_generation(session, **user, generation_id=seeded.generation_ids[1][0], category="wrong")
        with pytest.raises(StoreError, match="write the prompt"):
            redteam.write_prompt(session, **user, text="   ")
    with session_scope(db_url) as session:
        origins = {row.prompt_id: row.origin for row in session.exec(select(AdversarialPrompt))}
        assert origins == {prompt.id: "written", seeded.prompt_ids[1]: "flagged"}
        assert redteam.set_size(session) == 2


def test_a_flag_names_the_response_and_one_per_person_and_response(db_url):
    seeded = seed_store(db_url, users=["ann", "bob"], prompts=1)
    target = seeded.generation_ids[0][1]
    with session_scope(db_url) as session:
        ann = {"user_id": seeded.user_ids[0], "username": "ann"}
        redteam.flag_generation(session, **ann, generation_id=target, category="unsafe", note="tells how")
        redteam.flag_generation(session, **ann, generation_id=target, category="refusal")  # changed their mind
        redteam.flag_generation(
            session, user_id=seeded.user_ids[1], username="bob", generation_id=target, category="unsafe"
        )
        with pytest.raises(StoreError, match="category: pick one of unsafe, wrong, refusal"):
            redteam.flag_generation(session, **ann, generation_id=target, category="rude")
        with pytest.raises(StoreError, match="no response 999"):
            redteam.flag_generation(session, **ann, generation_id=999, category="wrong")
    with session_scope(db_url) as session:
        flags = session.exec(select(FailureFlag).order_by(FailureFlag.user_id)).all()
        assert [(f.user_id, f.category, f.note) for f in flags] == [
            (seeded.user_ids[0], "refusal", None),
            (seeded.user_ids[1], "unsafe", None),
        ]
        assert flags[0].response == "answer 0.1" and flags[0].model_version_id == seeded.version_id
        [row] = redteam.adversarial_set(session)
        assert (row.flags, row.categories, row.origin) == (2, "refusal, unsafe", "flagged")


def test_the_fill_answers_the_set_first_and_its_items_are_served_first(db_url):
    seeded = seed_store(db_url, users=["ann"], prompts=4, answers=0)
    with session_scope(db_url) as session:
        late, _ = redteam.write_prompt(session, user_id=seeded.user_ids[0], username="ann", text="Break me")
        version = session.get_one(ModelVersion, seeded.version_id)

    def generate(prompts, seed):
        return [f"{prompt} / answer {i}" for i, prompt in enumerate(prompts)]

    answered = answer_prompts(
        db_url, version=version, generate=generate, per_prompt=2, params={}, fresh_limit=2, attempts=1
    )
    assert answered.prompt_ids[0] == late.id  # the newest prompt, asked before the older ordinary ones
    with session_scope(db_url) as session:
        queue.enqueue(session, kind="pairwise", version_id=seeded.version_id, overlap=1)
        boosted = {i.prompt_id: i.priority for i in session.exec(select(AnnotationItem))}
        assert boosted[late.id] >= redteam.ADVERSARIAL_PRIORITY > max(v for p, v in boosted.items() if p != late.id)
        priority.reset_priorities(session)  # active selection re-scores ordinary items only
        first = queue.next_item(session, user_id=seeded.user_ids[0], kind="pairwise")
        assert first is not None and first.prompt_id == late.id


def _preference_store(url, prompts: int):
    seeded = seed_store(url, users=["ann"], prompts=prompts, enqueue=["pairwise"])
    with session_scope(url) as session:
        for item in session.exec(select(AnnotationItem).order_by(AnnotationItem.id)):
            queue.submit(
                session,
                user_id=seeded.user_ids[0],
                item_id=item.id,
                generation_ids=item.generation_ids,
                payload={"choice": "a"},
                client_key=f"k{item.id}",
            )
    return seeded


def test_exports_repeat_the_sets_training_rows_by_the_weight_and_list_its_held_out_prompts(db_url):
    seeded = _preference_store(db_url, prompts=40)
    adversarial = set(seeded.prompt_ids[::4])
    with session_scope(db_url) as session:
        for prompt_id in adversarial:
            session.add(AdversarialPrompt(prompt_id=prompt_id, origin="written"))

    def export(kind="preference", **options):
        with session_scope(db_url) as session:
            return build_export(session, ExportOptions(kind=kind, test_fraction=0.25, **options))

    plain, plain_manifest = export()
    twice, manifest = export(adversarial_weight=2.0)
    extra = plain_manifest["adversarial"]["rows"]["train"]
    assert extra > 0 and len(twice["train"]) == len(plain["train"]) + extra
    assert twice["test"] == plain["test"]  # held-out rows are never repeated
    assert manifest["adversarial"]["weight"] == 2.0 and manifest["adversarial"]["prompts"] == len(adversarial)
    half, _ = export(adversarial_weight=1.5)
    assert len(plain["train"]) < len(half["train"]) < len(twice["train"])
    assert export(adversarial_weight=1.5)[0] == half  # the fraction's share is seeded

    prompts, prompt_manifest = export(kind="prompt")
    texts = {f"prompt {seeded.prompt_ids.index(p)}" for p in adversarial}
    listed = {prompts["test"][i]["prompt"][0]["content"] for i in prompt_manifest["adversarial"]["test_rows"]}
    held_out = {row["prompt"][0]["content"] for row in prompts["test"]}
    assert listed and listed == texts & held_out


def test_a_weight_below_one_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="adversarial_weight"):
        ExportOptions(kind="preference", adversarial_weight=0.5)


def test_an_unknown_prompt_cannot_be_flagged(db_url):
    seeded = seed_store(db_url, users=["ann"])
    with session_scope(db_url) as session:
        add_prompt(session, text="there")
        with pytest.raises(StoreError, match="no prompt 77"):
            redteam.flag_tried_response(
                session,
                user_id=seeded.user_ids[0],
                username="ann",
                prompt_id=77,
                response="x",
                version_id=None,
                category="wrong",
            )
