import pytest

from feedback_app.config import ConfigError, load_app_config


def write(tmp_path, text):
    path = tmp_path / "app.yaml"
    path.write_text(text)
    return path


def test_the_shipped_config_loads():
    config = load_app_config("configs/app.yaml")
    assert config.overlap >= 1 and sum(config.mix.values()) > 0 and config.generation


def test_missing_file_means_defaults_and_overrides_win(tmp_path):
    config = load_app_config(tmp_path / "absent.yaml", port=9999, host=None)
    assert config.port == 9999 and config.host == "127.0.0.1"


@pytest.mark.parametrize(
    "text, message",
    [
        ("queue:\n  overlap: 0\n", "queue.overlap: must be >= 1"),
        ("queue:\n  overlap: two\n", "queue.overlap: expected int"),
        ("queue:\n  mix: {pairwise: 1, essay: 1}\n", "queue.mix.essay: unknown kind"),
        ("queue:\n  mix: {pairwise: 0}\n", "queue.mix: at least one kind"),
        ("server:\n  port: 70000\n", "server.port: must be <= 65535"),
        ("server:\n  hots: x\n", "server.hots: unknown key"),
        ("servre:\n  host: x\n", "servre: unknown section"),
        ("ui: [1, 2]\n", "ui: expected a mapping"),
        ("queue: {overlap: [\n", "not valid YAML"),
        ("queue:\n  selection: smart\n", "queue.selection: 'smart' is not one of random, uncertainty, margin"),
        ("queue:\n  selection_scorer: oracle\n", "queue.selection_scorer: 'oracle' is not one of reward_model, policy"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as error:
        load_app_config(path)
    assert str(path) in str(error.value)
