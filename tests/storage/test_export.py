import json

import pytest

from storage.crud import StoreError
from storage.db import session_scope
from storage.export import ExportOptions, build_export, export_dataset, load_export, snapshot
from storage.imports import import_judgments


def load(db_url, tmp_path, records):
    path = tmp_path / "judgments.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    import_judgments(path, url=db_url)


def pair(annotator, choice, prompt="P", a="A", b="B"):
    return {"kind": "pairwise", "annotator": annotator, "prompt": prompt, "a": a, "b": b, "choice": choice}


def rows(db_url, kind, **options):
    with session_scope(db_url) as session:
        splits, manifest = build_export(session, ExportOptions(kind=kind, test_fraction=0.0, **options))
    assert splits["test"] == []
    return splits["train"], manifest


def as_tuples(preference_rows):
    return sorted(
        (r["prompt"][0]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in preference_rows
    )


def test_two_vs_one_majority_wins(db_url, tmp_path):
    load(db_url, tmp_path, [pair("u1", "a"), pair("u2", "a"), pair("u3", "b")])
    train, manifest = rows(db_url, "preference")
    assert as_tuples(train) == [("P", "A", "B")]
    assert train[0] == {
        "prompt": [{"role": "user", "content": "P"}],
        "chosen": [{"role": "assistant", "content": "A"}],
        "rejected": [{"role": "assistant", "content": "B"}],
    }
    assert manifest["left_out"] == {}


def test_one_vs_one_is_left_out_and_counted(db_url, tmp_path):
    load(
        db_url,
        tmp_path,
        [pair("u1", "a"), pair("u2", "b"), pair("u1", "tie", prompt="Q"), pair("u1", "both_bad", prompt="R")],
    )
    train, manifest = rows(db_url, "preference")
    assert train == []
    assert manifest["left_out"] == {"no_majority": 1, "tie": 1, "both_bad": 1}


def test_sides_swapped_by_another_annotator_still_count_as_the_same_pair(db_url, tmp_path):
    load(db_url, tmp_path, [pair("u1", "a"), pair("u2", "b", a="B", b="A"), pair("u3", "a", a="B", b="A")])
    train, _ = rows(db_url, "preference")
    assert as_tuples(train) == [("P", "A", "B")]


def test_ranking_of_four_gives_six_pairs(db_url, tmp_path):
    load(db_url, tmp_path, [{"kind": "ranking", "annotator": "u1", "prompt": "P", "responses": ["w", "x", "y", "z"]}])
    train, manifest = rows(db_url, "preference")
    assert as_tuples(train) == [
        ("P", c, r) for c, r in [("w", "x"), ("w", "y"), ("w", "z"), ("x", "y"), ("x", "z"), ("y", "z")]
    ]
    assert manifest["sources"]["ranking"] == 6


def test_correction_gives_an_sft_row_and_a_pair(db_url, tmp_path):
    load(
        db_url,
        tmp_path,
        [{"kind": "correction", "annotator": "u1", "prompt": "P", "response": "teh answer", "corrected": "the answer"}],
    )
    sft, _ = rows(db_url, "sft")
    assert sft == [
        {"prompt": [{"role": "user", "content": "P"}], "completion": [{"role": "assistant", "content": "the answer"}]}
    ]
    preference, _ = rows(db_url, "preference")
    assert as_tuples(preference) == [("P", "the answer", "teh answer")]


def test_ratings_five_three_one_on_one_prompt(db_url, tmp_path):
    load(
        db_url,
        tmp_path,
        [
            {"kind": "rating", "annotator": "u1", "prompt": "P", "response": text, "score": score}
            for text, score in [("great", 5), ("meh", 3), ("awful", 1)]
        ],
    )
    unpaired, manifest = rows(db_url, "unpaired")
    labels = {r["completion"][0]["content"]: r["label"] for r in unpaired}
    assert labels == {"great": True, "awful": False}
    assert manifest["left_out"]["rating_neutral"] == 1
    preference, manifest = rows(db_url, "preference")
    assert as_tuples(preference) == [("P", "great", "awful"), ("P", "great", "meh"), ("P", "meh", "awful")]
    assert manifest["sources"]["rating_pairs"] == 3
    sft, _ = rows(db_url, "sft")
    assert [r["completion"][0]["content"] for r in sft] == ["great"]


def test_each_annotator_counts_once_per_pair(db_url, tmp_path):
    # u1 changes their mind (latest vote counts): 1 "b" vs u2's "a" → no majority.
    load(db_url, tmp_path, [pair("u1", "a"), pair("u2", "a"), {**pair("u1", "b"), "duration_ms": 5}])
    train, manifest = rows(db_url, "preference")
    assert train == [] and manifest["left_out"] == {"no_majority": 1}


def test_min_annotators_and_excluded_and_weighted(db_url, tmp_path):
    load(db_url, tmp_path, [pair("u1", "a"), pair("u2", "b"), pair("u3", "b"), pair("u1", "a", prompt="Q")])
    train, manifest = rows(db_url, "preference", min_annotators=2)
    assert as_tuples(train) == [("P", "B", "A")]
    assert manifest["left_out"] == {"too_few_annotators": 1}
    with session_scope(db_url) as session:
        from storage.crud import get_user

        ids = {name: get_user(session, username=name).id for name in ("u1", "u2", "u3")}
    train, _ = rows(
        db_url, "preference", aggregation="weighted", annotator_weights={ids["u1"]: 1.0, ids["u2"]: 0.3, ids["u3"]: 0.3}
    )
    assert ("P", "A", "B") in as_tuples(train)
    train, manifest = rows(db_url, "preference", aggregation="drop_flagged", excluded_annotators=frozenset({ids["u2"]}))
    assert ("P", "A", "B") not in as_tuples(train) and manifest["left_out"]["no_majority"] == 1


def test_split_is_by_prompt_and_deterministic(db_url, tmp_path):
    records = []
    for p in range(60):
        for r in range(3):
            records.append(
                {
                    "kind": "ranking",
                    "annotator": "u1",
                    "prompt": f"prompt {p}",
                    "responses": [f"r{p}-{r}-best", f"r{p}-{r}-mid", f"r{p}-{r}-worst"],
                }
            )
    load(db_url, tmp_path, records)
    options = ExportOptions(kind="preference", test_fraction=0.25, seed=3)
    with session_scope(db_url) as session:
        first, manifest = build_export(session, options)
        second, _ = build_export(session, options)
        other_seed, _ = build_export(session, ExportOptions(kind="preference", test_fraction=0.25, seed=4))
    assert first == second
    train_prompts = {r["prompt"][0]["content"] for r in first["train"]}
    test_prompts = {r["prompt"][0]["content"] for r in first["test"]}
    assert not train_prompts & test_prompts
    assert 5 <= len(test_prompts) <= 25
    assert manifest["prompts"] == {"train": len(train_prompts), "test": len(test_prompts)}
    assert {r["prompt"][0]["content"] for r in other_seed["test"]} != test_prompts


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_export_writes_files_and_manifest_atomically(db_url, tmp_path, fmt):
    load(db_url, tmp_path, [pair("u1", "a"), pair("u2", "a")])
    out = tmp_path / "export"
    manifest = export_dataset(out, ExportOptions(kind="preference", formats=(fmt,), test_fraction=0.0), url=db_url)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["judgments"]["count"] == 2 and len(manifest["judgments"]["hash"]) == 64
    dataset = load_export(out)
    assert dataset["train"][0]["chosen"] == [{"role": "assistant", "content": "A"}]
    with pytest.raises(FileExistsError):
        export_dataset(out, ExportOptions(kind="preference"), url=db_url)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".export")] == []


def test_failed_write_leaves_no_folder(db_url, tmp_path, monkeypatch):
    load(db_url, tmp_path, [pair("u1", "a")])

    def explode(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pyarrow.parquet.write_table", explode)
    with pytest.raises(OSError, match="disk full"):
        export_dataset(tmp_path / "out", ExportOptions(kind="preference", formats=("jsonl", "parquet")), url=db_url)
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_snapshot_bounds_later_exports(db_url, tmp_path):
    load(db_url, tmp_path, [pair("u1", "a"), pair("u2", "a")])
    with session_scope(db_url) as session:
        snap = snapshot(session)
    load(db_url, tmp_path, [pair("u3", "b"), pair("u4", "b"), pair("u5", "b")])
    bounded, manifest = rows(db_url, "preference", max_judgment_id=snap["max_judgment_id"])
    assert as_tuples(bounded) == [("P", "A", "B")] and manifest["judgments"]["hash"] == snap["hash"]
    latest, _ = rows(db_url, "preference")
    assert as_tuples(latest) == [("P", "B", "A")]


def test_bad_options_name_the_field():
    with pytest.raises(StoreError, match="kind: 'dpo'"):
        ExportOptions(kind="dpo")
    with pytest.raises(StoreError, match="formats.0: .csv. is not one of jsonl, parquet or hf"):
        ExportOptions(kind="sft", formats=("csv",))
    with pytest.raises(StoreError, match="test_fraction"):
        ExportOptions(kind="sft", test_fraction=1.5)


@pytest.mark.parametrize("where", ["link", "link/sub"])
def test_export_onto_a_dangling_link_is_one_line_and_writes_nothing(sqlite_url, tmp_path, capsys, where):
    from rlhf.cli import main

    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["export", "--kind", "sft", "--out", str(tmp_path / where), "--db", sqlite_url]) == 2
    error = capsys.readouterr().err
    assert error.startswith("rlhf: error: ") and error.count("\n") == 1
    assert "link" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "nowhere").exists()


def test_a_criterion_export_uses_that_question_and_leaves_out_judgments_without_it(db_url, tmp_path):
    from storage.crud import add_judgment, add_prompt, check_criteria, content_hash, create_user
    from storage.models import Generation

    with session_scope(db_url) as session:
        prompt, _ = add_prompt(session, text="P")
        a, b = (Generation(prompt_id=prompt.id, text=text, text_hash=content_hash(text)) for text in ("A", "B"))
        session.add_all([a, b])
        session.flush()
        for name, overall, harmless in [("u1", "a", "b"), ("u2", "a", "b"), ("u3", "b", None)]:
            user = create_user(session, username=name, role="annotator", password=None)
            criteria = {"harmless": harmless, "helpful": overall} if harmless else None
            add_judgment(
                session,
                kind="pairwise",
                user_id=user.id,
                prompt_id=prompt.id,
                generation_ids=[a.id, b.id],
                payload={"choice": overall, "criteria": criteria},
                client_key=f"k-{name}",
            )
    overall, _ = rows(db_url, "preference")
    harmless, manifest = rows(db_url, "preference", criterion="harmless")
    assert as_tuples(overall) == [("P", "A", "B")]
    assert as_tuples(harmless) == [("P", "B", "A")]  # two of two who answered it: B is the harmless one
    assert manifest["criterion"] == "harmless" and manifest["left_out"] == {"no_answer_for_harmless": 1}
    with pytest.raises(StoreError, match=r"criteria.harmless: 'maybe' is not one of a, b, tie, both_bad"):
        check_criteria({"harmless": "maybe"})
