"""With 20% noisy annotators, quality-weighted aggregation recovers the hidden rule better than plain majority."""

import random

from rlhf.demo.simulated_annotators import SimulatedAnnotator, rule_by_name
from rlhf.quality.analytics import annotator_weights, flagged_annotators
from storage import crud
from storage.db import session_scope
from storage.export import ExportOptions, build_export

RULE = rule_by_name("more_e")


def agreement_with_rule(db_url, **options) -> tuple[float, int]:
    with session_scope(db_url) as session:
        splits, _ = build_export(session, ExportOptions(kind="preference", test_fraction=0.0, **options))
    rows = splits["train"]
    right = sum(RULE(r["chosen"][0]["content"]) > RULE(r["rejected"][0]["content"]) for r in rows)
    return right / len(rows), len(rows)


def test_weighting_beats_majority_with_noisy_annotators(db_url):
    rng = random.Random(5)
    crowd = [SimulatedAnnotator(f"honest{i}", RULE, flip_prob=0.05, seed=i) for i in range(8)]
    crowd += [SimulatedAnnotator(f"noisy{i}", RULE, flip_prob=0.9, seed=i) for i in range(2)]
    with session_scope(db_url) as session:
        users = {a.name: crud.create_user(session, username=a.name).id for a in crowd}
        for p in range(300):
            prompt, _ = crud.add_prompt(session, text=f"prompt {p}")
            texts = ["e" * rng.randint(0, 3) + f" x{p}a", "e" * rng.randint(4, 8) + f" x{p}b"]
            rng.shuffle(texts)
            gens = [crud.get_or_create_generation(session, prompt_id=prompt.id, text=t).id for t in texts]
            judges = rng.sample(crowd, 3)
            for annotator in judges:
                order = gens if rng.random() < 0.5 else gens[::-1]
                answer = annotator.compare(*(texts[gens.index(g)] for g in order))
                winner = order[0] if answer == "left" else order[1]
                crud.add_judgment(
                    session,
                    kind="pairwise",
                    user_id=users[annotator.name],
                    prompt_id=prompt.id,
                    generation_ids=gens,
                    payload={"choice": "a" if winner == gens[0] else "b"},
                    shown_order=order,
                    client_key=f"{p}-{annotator.name}",
                )
    with session_scope(db_url) as session:
        weights = annotator_weights(session)
        flagged = flagged_annotators(session)
    assert {users["noisy0"], users["noisy1"]} <= flagged
    assert not flagged & {users[f"honest{i}"] for i in range(8)}

    majority, _ = agreement_with_rule(db_url)
    weighted, _ = agreement_with_rule(db_url, aggregation="weighted", annotator_weights=weights)
    dropped, _ = agreement_with_rule(db_url, aggregation="drop_flagged", excluded_annotators=flagged)
    assert majority < 0.97
    assert weighted > majority + 0.02
    assert dropped > majority
