"""The one YAML loader: aliases and nesting within a budget, at every way YAML comes in."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunepilot._yaml import YAML_MAX_NODES, compose_yaml, load_yaml
from tunepilot.exceptions import SpecError


def anchor_bomb(levels: int, width: int = 9) -> str:
    """A "billion laughs": each level lists the previous one ``width`` times (width**levels)."""
    lines = ['l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_an_anchor_bomb_is_refused_before_it_is_built() -> None:
    bomb = anchor_bomb(7)
    assert len(bomb) < 600
    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        load_yaml(bomb, source="bomb.yaml")
    assert time.perf_counter() - started < 1.0
    message = str(caught.value)
    assert message.startswith("bomb.yaml: ") and f"{YAML_MAX_NODES:,} values" in message
    assert "TUNEPILOT_MAX_YAML_NODES" in message


def test_aliases_within_the_budget_still_work() -> None:
    text = "base: &base {lr: 0.1, layers: [1, 2]}\ncopy: *base\nmerged: {<<: *base, lr: 0.2}\n"
    assert load_yaml(text, source="ok") == {
        "base": {"lr": 0.1, "layers": [1, 2]}, "copy": {"lr": 0.1, "layers": [1, 2]},
        "merged": {"lr": 0.2, "layers": [1, 2]}}
    assert load_yaml(anchor_bomb(2), source="small", max_nodes=200)["l2"][0][0] == ["lol"]
    with pytest.raises(SpecError, match="more than 50 values"):
        load_yaml(anchor_bomb(2), source="small", max_nodes=50)


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEPILOT_MAX_YAML_NODES", "20")
    with pytest.raises(SpecError, match="more than 20 values"):
        load_yaml(anchor_bomb(2), source="env")
    monkeypatch.setenv("TUNEPILOT_MAX_YAML_NODES", "many")
    with pytest.raises(SpecError, match="TUNEPILOT_MAX_YAML_NODES='many' is not a whole number"):
        load_yaml("a: 1", source="env")


def test_deep_nesting_and_self_reference_are_refused_with_the_line() -> None:
    with pytest.raises(SpecError, match=r"deep: line 1: .* more than 64 deep.*MAX_YAML_DEPTH"):
        load_yaml("[" * 5000 + "]" * 5000, source="deep")
    assert load_yaml("[" * 64 + "]" * 64, source="deep") is not None
    with pytest.raises(SpecError, match="line 2: an alias refers to a value that contains it"):
        compose_yaml("a: 1\nb: &b [1, *b]\n", source="loop")


def test_bad_yaml_and_python_tags_say_where() -> None:
    with pytest.raises(SpecError, match="f.yaml: not valid YAML at line 1, column 5"):
        load_yaml("a: [", source="f.yaml")
    with pytest.raises(SpecError, match="could not determine a constructor"):
        load_yaml("!!python/object/apply:os.system ['true']", source="f.yaml")
    assert load_yaml("", source="empty") is None


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from tunepilot.cli import main; main()", *args],
                          check=False, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("command", [
    ["run", "bomb.yaml"],
    ["online", "simulate", "--world", "bomb.yaml", "--seeds", "1"],
    ["sweep", "bomb.yaml", "--url", "http://127.0.0.1:9"],
])
def test_every_yaml_command_refuses_a_bomb_with_exit_2(tmp_path: Path, command: list[str]) -> None:
    # The spec's keys are valid so that only the bomb can fail it.
    (tmp_path / "bomb.yaml").write_text(
        "name: s\nobjective: m:f\ndirection: minimize\nn_trials: 1\n" + anchor_bomb(7))
    started = time.perf_counter()
    done = _cli(*command, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "expands to more than" in done.stderr and "TUNEPILOT_MAX_YAML_NODES" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.perf_counter() - started < 60


def test_the_online_config_file_refuses_a_bomb(tmp_path: Path) -> None:
    from tunepilot.online._config import load_config

    path = tmp_path / "online.yaml"
    path.write_text(anchor_bomb(7))
    with pytest.raises(SpecError, match="expands to more than"):
        load_config(path)


def test_values_their_tag_cannot_hold_are_refused_with_a_message() -> None:
    with pytest.raises(SpecError, match="a value cannot be read: Exceeds the limit"):
        load_yaml("n: " + "1" * 5000, source="f")
    with pytest.raises(SpecError, match="could not convert string to float"):
        load_yaml("n: !!float abc", source="f")
