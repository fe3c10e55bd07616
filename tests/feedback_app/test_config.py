import pytest

from feedback_app.config import ConfigError, load_app_config


def write(tmp_path, text):
    path = tmp_path / "app.yaml"
    path.write_text(text)
    return path


def test_the_shipped_config_loads():
    config = load_app_config("configs/app.yaml")
    assert config.overlap >= 1 and sum(config.mix.values()) > 0 and config.generation


def test_overrides_win_and_none_means_the_file(tmp_path):
    config = load_app_config(write(tmp_path, "server:\n  host: 0.0.0.0\n"), port=9999, host=None)
    assert config.port == 9999 and config.host == "0.0.0.0" and config.overlap == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("queue:\n  overlap: 0\n", r"queue.overlap: input should be greater than or equal to 1, got 0 \(line 2\)"),
        ("queue:\n  overlap: two\n", "queue.overlap: input should be a valid integer, got 'two'"),
        ("queue:\n  mix: {pairwise: 1, essay: 1}\n", "queue.mix.essay: 'essay' is not one of rating, pairwise"),
        ("queue:\n  mix: {pairwise: 0}\n", "queue.mix: at least one kind"),
        ("queue:\n  agreement_share: 1.5\n", "queue.agreement_share: input should be less than or equal to 1"),
        ("queue:\n  agreement_overlap: 1\n", "queue.agreement_overlap: input should be greater than or equal to 2"),
        ("server:\n  port: 70000\n", "server.port: input should be less than or equal to 65535, got 70000"),
        ("server:\n  hots: x\n", r"server.hots: unknown key \(did you mean host\?\) \(line 2\)"),
        ("servre:\n  host: x\n", r"servre: unknown key \(did you mean server\?\) \(line 1\)"),
        ("ui: [1, 2]\n", "ui: input should be a valid dictionary"),
        ("queue: {overlap: [\n", "not valid YAML"),
        ("queue:\n  selection: smart\n", "queue.selection: 'smart' is not one of random, uncertainty, margin"),
        (
            "queue:\n  selection_scorer: oracle\n",
            "queue.selection_scorer: 'oracle' is not one of reward_model or policy",
        ),
    ],
)
def test_bad_settings_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as error:
        load_app_config(path)
    assert str(path) in str(error.value)
