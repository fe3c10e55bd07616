"""Bad YAML configs (round configs and the app config): hypothesis changes one key of a working config; the error
is a ConfigError that names the file and that key. Random text and bytes give a ConfigError too, never a crash.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_app.config import ConfigError as AppConfigError
from feedback_app.config import load_app_config
from rlhf.training.config import ConfigError, parse_round_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ROUND_FILES = sorted(p.name for p in CONFIGS.glob("round_*.yaml"))
ran = {"round": 0, "app": 0}


def leaves(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found += leaves(value, path + ".")
        else:
            found.append((path, value))
    return found


def set_path(tree: dict, path: str, value=None, *, rename: str | None = None) -> dict:
    node = tree
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if rename is not None:
        node[rename] = node.pop(last)
    else:
        node[last] = value
    return tree


def wrong_for(value) -> st.SearchStrategy:
    """Values of another type than `value`'s, which the checks must refuse."""
    if isinstance(value, bool):
        return st.sampled_from(["maybe", [True], {"on": 1}, 7])
    if isinstance(value, (int, float)):
        return st.sampled_from(["not a number", [1, 2], {"value": 1}, "<script>x</script>"])
    if isinstance(value, str):
        return st.sampled_from([[1, 2], {"x": 1}, 3.5, True])
    if isinstance(value, list):
        return st.sampled_from(["", 7, {"x": 1}, [[1]]])
    return st.sampled_from(["x", 7, [1]])


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), name=st.sampled_from(ROUND_FILES))
def test_a_bad_key_in_a_round_config_is_named(data, name):
    tree = yaml.safe_load((CONFIGS / name).read_text())
    path, value = data.draw(st.sampled_from(leaves(tree)))
    how = data.draw(st.sampled_from(["wrong_type", "unknown_key"]))
    if how == "wrong_type":
        set_path(tree, path, data.draw(wrong_for(value)))
        expected = path
    else:
        typo = path.rsplit(".", 1)[-1] + "_typo"
        set_path(tree, path, rename=typo)
        expected = path.rsplit(".", 1)[0] + "." + typo if "." in path else typo
    with pytest.raises(ConfigError) as caught:
        parse_round_config(yaml.safe_dump(tree), f"{name}")
    message = str(caught.value)
    assert message.startswith(f"{name}: "), message
    assert expected in message or (how == "unknown_key" and path in message), (path, how, message)
    ran["round"] += 1


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_bad_key_in_the_app_config_is_named(data, tmp_path_factory):
    tree = yaml.safe_load((CONFIGS / "app.yaml").read_text())
    candidates = [(p, v) for p, v in leaves(tree) if not p.startswith("generation.")]
    path, value = data.draw(st.sampled_from(candidates))
    how = data.draw(st.sampled_from(["wrong_type", "unknown_key"]))
    if how == "wrong_type":
        set_path(tree, path, data.draw(wrong_for(value)))
        expected = path
    else:
        typo = path.rsplit(".", 1)[-1] + "_typo"
        set_path(tree, path, rename=typo)
        expected = path.rsplit(".", 1)[0] + "." + typo
    file = tmp_path_factory.mktemp("app") / "app.yaml"
    file.write_text(yaml.safe_dump(tree))
    with pytest.raises(AppConfigError) as caught:
        load_app_config(file)
    message = str(caught.value)
    assert message.startswith(f"{file}: ") and expected in message, (path, how, message)
    ran["app"] += 1


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    blob=st.one_of(
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        st.text(max_size=200),
        st.sampled_from(["a: [1,\n", "\tname: x", "- 1\n- 2", "name: x\nname: y", "{{}}", "'"]),
    )
)
def test_random_text_is_a_config_error(blob, tmp_path_factory):
    with pytest.raises(ConfigError):
        parse_round_config(blob, "random.yaml")
    file = tmp_path_factory.mktemp("app") / "app.yaml"
    file.write_text(blob, encoding="utf-8", errors="surrogateescape")
    try:
        load_app_config(file)
    except AppConfigError as error:
        assert str(error).startswith(str(file))
    ran["round"] += 1
    ran["app"] += 1


def test_report_cases_run():
    print(f"\nconfig fuzz: {ran['round']} bad round configs and {ran['app']} bad app configs refused by key")
    assert ran["round"] >= 100 and ran["app"] >= 60
