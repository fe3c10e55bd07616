"""The app config's errors: every problem of a file at once, with key and line; a missing file is an error."""

from __future__ import annotations

import pytest

import configs
from feedback_app.config import ConfigError, load_app_config
from rlhf.cli import main
from rlhf.inference.generation import load_generation_defaults

BAD = """\
server:
  prot: 7861
  session_hours: 0
queue:
  overlap: 0
  gold_rate: 1.5
  selection: smart
  mix: {pairwise: 1, essay: 1}
ui:
  timer_s: fast
"""


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_app_config(path)
    problems = caught.value.problems
    expected = {
        "server.prot": ("unknown key (did you mean port?)", 2),
        "server.session_hours": ("greater than or equal to 0.01", 3),
        "queue.overlap": ("greater than or equal to 1", 5),
        "queue.gold_rate": ("less than or equal to 1", 6),
        "queue.selection": ("'smart' is not one of random", 7),
        "queue.mix.essay": ("'essay' is not one of", 8),
        "ui.timer_s": ("valid number", 10),
    }
    assert len(problems) == len(expected), problems
    for key, (what, line) in expected.items():
        [problem] = [p for p in problems if p.startswith(f"{path}: {key}: ")]
        assert what in problem and problem.endswith(f"(line {line})"), problem
    assert str(caught.value) == "\n".join(problems)


def test_checks_together_leave_room_for_ordinary_work(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("queue:\n  gold_rate: 0.6\n  swap_rate: 0.5\n")
    with pytest.raises(ConfigError, match=r"queue.swap_rate: .*must add up to at most 1, got 0.6 \+ 0.5 \(line 3\)"):
        load_app_config(path)
    with pytest.raises(ConfigError, match=r"with gold_rate overridden\): queue.swap_rate: "):
        load_app_config("configs/app.yaml", gold_rate=0.99)


def test_floats_may_be_written_like_1e_1(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("queue:\n  gold_rate: 1e-1\n  fill_interval_s: 5\n")
    config = load_app_config(path)
    assert config.gold_rate == 0.1 and config.fill_interval_s == 5.0


def test_a_bad_override_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"\(with port overridden\): server.port: .*65535, got 70000"):
        load_app_config(port=70000)
    with pytest.raises(TypeError, match="no setting colour"):
        load_app_config(colour="red")


def test_a_missing_config_file_is_an_error_not_the_defaults(tmp_path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=f"{missing}: no such config file"):
        load_app_config(missing)
    with pytest.raises(ConfigError, match=f"{missing}: no such config file"):
        load_generation_defaults(missing)


def test_the_default_and_shipped_names_work_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_app_config().gold_rate == 0.05
    assert load_app_config("configs/app.yaml").gold_rate == 0.05
    assert load_app_config("app_demo").overlap == 1
    assert load_generation_defaults() == load_generation_defaults(configs.ROOT / "app.yaml")
    assert load_generation_defaults()["per_prompt"] == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--config", "/nonexistent.yaml"],
        ["generate", "--model", "base", "--config", "/nonexistent.yaml"],
        ["demo", "--app-config", "/nonexistent.yaml"],
        ["demo", "--round-config", "/nonexistent.yaml"],
    ],
)
def test_a_missing_config_option_stops_the_command(argv, capsys, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the command ran without its config")

    import feedback_app.app
    import rlhf.demo.loop
    import rlhf.inference.generation

    monkeypatch.setattr(feedback_app.app, "launch", must_not_run)
    monkeypatch.setattr(rlhf.inference.generation, "generate_candidates", must_not_run)
    monkeypatch.setattr(rlhf.demo.loop, "run_demo", must_not_run)
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert "/nonexistent.yaml: no such config file" in err and "Traceback" not in err
