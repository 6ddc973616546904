"""Readiness answers and indicators files: scales, one-line located errors, and the `assess`
command on them (table, JSON, questionnaire-only, saved snapshots)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from launcher.cli import app
from readiness.answers import Special, load_answers, share_bracket
from readiness.indicator_file import load_indicators
from readiness.persistence import ReadinessStore
from shopfloor.config import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "readiness"
HEADER = "questionnaire: 1\nsme: polimer\nanswers:\n"


def answers_text(**changes: object) -> str:
    values: dict[str, object] = {f"Q{n}": 2 for n in range(1, 29)}
    values.update(changes)
    lines = [f"  {item}: {value}" for item, value in values.items() if value is not None]
    return HEADER + "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "answers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_answers(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- answers -------------------------------------------------------------------------------
def test_scales_take_levels_words_percentages_and_special_answers(tmp_path: Path) -> None:
    path = write(
        tmp_path, answers_text(Q2="weekly", Q6="45%", Q9="95 %", Q23="na", Q24="dont_know")
    )
    answers = load_answers(path)
    got = {item: answers.responses[item] for item in ("Q1", "Q2", "Q6", "Q9", "Q23", "Q24")}
    assert got == {
        "Q1": 2,
        "Q2": 4,
        "Q6": 3,
        "Q9": 5,
        "Q23": Special.NOT_APPLICABLE,
        "Q24": Special.DONT_KNOW,
    }
    assert answers.sme == "polimer"
    assert answers.questionnaire.version == 1


@pytest.mark.parametrize(
    ("percent", "level"),
    [
        (0, 0),
        (0.5, 1),
        (9.9, 1),
        (10, 2),
        (29.9, 2),
        (30, 3),
        (60, 4),
        (90, 4),
        (90.1, 5),
        (100, 5),
    ],
)
def test_share_brackets(percent: float, level: int) -> None:
    assert share_bracket(percent) == level


def test_unknown_item_names_file_line_and_item(tmp_path: Path) -> None:
    path = write(tmp_path, answers_text(Q29=3))
    assert error_of(path) == (f"{path}:32: answers.Q29: unknown item (questionnaire 1 has Q1-Q28)")


@pytest.mark.parametrize("value", ["7", "-1", "2.5", "true", ".inf", "[3]"])
def test_out_of_range_value(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, answers_text(Q5=value))
    message = error_of(path)
    assert message.startswith(f"{path}:8: answers.Q5: ")
    assert "answer 0-5, dont_know or na" in message


def test_wrong_scale_names_both_scales(tmp_path: Path) -> None:
    path = write(tmp_path, answers_text(Q6="weekly"))
    assert error_of(path) == (
        f"{path}:9: answers.Q6: 'weekly' is a frequency but Q6 is answered as a share: "
        "answer 0-5 or a percentage such as 45%, dont_know or na"
    )
    path = write(tmp_path, answers_text(Q2="45%"))
    assert "'45%' is a share but Q2 is answered as a frequency" in error_of(path)
    path = write(tmp_path, answers_text(Q1="monthly"))
    assert "'monthly' is a frequency but Q1 is answered as an anchored level: " in error_of(path)


def test_percentage_over_100_and_unknown_words(tmp_path: Path) -> None:
    assert "120% is out of range" in error_of(write(tmp_path, answers_text(Q9="120%")))
    assert "'often' is not an answer" in error_of(write(tmp_path, answers_text(Q2="often")))


def test_missing_items_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, answers_text(Q17=None, Q18=None))
    assert error_of(path) == (
        f"{path}:3: answers: Q17, Q18 not answered (every item takes 0-5, dont_know or na)"
    )


def test_a_dimension_all_na_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, answers_text(Q21="na", Q22="na", Q23="na", Q24="n/a"))
    assert (
        error_of(path) == f"{path}:24: answers.Q21: every item of D6 is na: at least one must apply"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert error_of(path).startswith(f"{path}: cannot read file: ")


def test_unknown_version_and_fields(tmp_path: Path) -> None:
    path = write(tmp_path, answers_text().replace("questionnaire: 1", "questionnaire: 2"))
    assert error_of(path) == f"{path}:1: questionnaire: unknown questionnaire version 2 (known: 1)"
    path = write(tmp_path, answers_text() + "target: {D5: 4}\n")
    assert error_of(path) == f"{path}:32: target: unknown field (check its spelling)"
    path = write(tmp_path, answers_text() + "targets: {D9: 4}\n")
    assert error_of(path) == f"{path}:32: targets.D9: unknown dimension (use default or D1-D7)"
    path = write(tmp_path, answers_text() + "targets: {D5: 6}\n")
    assert error_of(path).startswith(
        f"{path}:32: targets.D5: Input should be less than or equal to 5"
    )


def test_demo_answers_files_load() -> None:
    smes = {
        load_answers(EXAMPLES / f"{name}.yaml").sme
        for name in ("moulding", "machining", "packaging")
    }
    assert smes == {"polimer", "metalform", "nutrisnack"}


# --- indicators file -----------------------------------------------------------------------
def test_indicators_file_reads_fractions_and_response_times() -> None:
    evidence = load_indicators(EXAMPLES / "sme-a-indicators.yaml")
    assert evidence.indicators.DC is not None
    assert abs(evidence.indicators.DC - 5625 / 6048) < 1e-12
    assert evidence.indicators.ART is not None
    assert (evidence.indicators.ART.median_min, evidence.indicators.ART.events) == (42, 37)
    assert (
        evidence.window_start is not None
        and evidence.window_start.isoformat() == "2026-10-05T00:00:00+00:00"
    )
    b = load_indicators(EXAMPLES / "sme-b-indicators.yaml").indicators
    assert b.ART is not None and b.ART.median_min is None  # 3 events


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("indicators:\n  CC: 1.2\n", ":2: indicators.CC: Input should be less than or equal to 1"),
        ("indicators:\n  CC: 3/0\n", ":2: indicators.CC: the fraction's denominator is zero"),
        ("indicators:\n  XX: 0.5\n", ":2: indicators.XX: unknown field (check its spelling)"),
        (
            "indicators:\n  ART: {events: 9}\n",
            ":2: indicators.ART: median_minutes is needed with 5+ events",
        ),
        (
            "indicators:\n  ART: {events: 2, logging: false}\n",
            ":2: indicators.ART: logging false means",
        ),
        (
            "window: {start: 2026-11-02T00:00:00Z, end: 2026-11-01T00:00:00Z}\nindicators: {}\n",
            ":1: window: end must come after start",
        ),
    ],
)
def test_bad_indicators_file(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body, "indicators.yaml")
    with pytest.raises(ConfigError) as caught:
        load_indicators(path)
    assert str(caught.value).startswith(f"{path}{expected}")


def test_indicators_file_may_be_json(tmp_path: Path) -> None:
    path = write(
        tmp_path, json.dumps({"indicators": {"CC": 0.5, "ART": {"logging": False}}}), "i.json"
    )
    indicators = load_indicators(path).indicators
    assert indicators.CC == 0.5
    assert indicators.ART is not None and not indicators.ART.logging


# --- the command ---------------------------------------------------------------------------
def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_assess_json_reproduces_sme_a(tmp_path: Path) -> None:
    database = tmp_path / "readiness.db"
    result = run(
        "assess",
        str(EXAMPLES / "sme-a.yaml"),
        "--indicators",
        str(EXAMPLES / "sme-a-indicators.yaml"),
        "--db",
        str(database),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["index"] == pytest.approx(2.675, abs=1e-9)
    assert (data["level"], data["level_name"]) == (2, "Basic/connected")
    assert data["archetype"]["name"] == "Tech-led"
    d5 = data["dimensions"][4]
    assert (d5["questionnaire"], d5["evidence"], d5["cap"], d5["final"]) == (2.25, 2.5, 2, 2.0)
    assert d5["combined"] == pytest.approx(2.4, abs=1e-9)
    assert d5["binding_gates"] == ["G3"]
    top = data["priorities"][0]
    assert (top["dimension"], top["recommendation"]["indicator"]) == ("D5", "RC")
    assert top["recommendation"]["what_if_index"] == pytest.approx(2.78, abs=1e-9)
    assert data["indicators"]["CC"] == {"value": 0.75, "score": 4}
    with ReadinessStore(database) as store:
        assert [s.index for s in store.snapshots("sme-a")] == [pytest.approx(2.675, abs=1e-9)]


def test_assess_table(tmp_path: Path) -> None:
    result = run(
        "assess",
        str(EXAMPLES / "sme-b.yaml"),
        "--indicators",
        str(EXAMPLES / "sme-b-indicators.yaml"),
        "--db",
        str(tmp_path / "r.db"),
        "--no-save",
    )
    assert result.exit_code == 0, result.output
    for text in ("R = 2.100", "level 1 Beginner", "Lean-led", "flag over-claim D4", "1. D6"):
        assert text in result.stdout
    assert not (tmp_path / "r.db").exists()


def test_assess_questionnaire_only(tmp_path: Path) -> None:
    result = run(
        "assess", str(EXAMPLES / "sme-b.yaml"), "--questionnaire-only", "--no-save", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "questionnaire-only"
    assert data["index"] == pytest.approx(1.9875, abs=1e-9)
    assert data["archetype"]["name"] == "Starter"


def test_assess_errors_are_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, answers_text(Q29=3))
    result = run("assess", str(bad), "--questionnaire-only", "--no-save")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {bad}:32: answers.Q29: unknown item (questionnaire 1 has Q1-Q28)\n"
    )
    result = run("assess", str(EXAMPLES / "sme-a.yaml"), "--no-save")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: give one of --indicators FILE, --store-url URL or --questionnaire-only\n"
    )
    result = run(
        "assess", str(EXAMPLES / "sme-a.yaml"), "--questionnaire-only", "--db", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "cannot open the database" in result.stderr


def test_history_shows_progress_since_the_baseline(tmp_path: Path) -> None:
    database = str(tmp_path / "r.db")
    args = ("assess", str(EXAMPLES / "sme-b.yaml"), "--db", database, "--json")
    assert run(*args, "--questionnaire-only").exit_code == 0
    assert run(*args, "--indicators", str(EXAMPLES / "sme-b-indicators.yaml")).exit_code == 0
    result = run("assess-history", "sme-b", "--db", database, "--json")
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)
    assert [p["index_change"] for p in points] == pytest.approx([0.0, 2.1 - 1.9875], abs=1e-9)
    assert points[1]["final_change"]["D6"] == pytest.approx(0.4 - 1.0, abs=1e-9)
    table = run("assess-history", "sme-b", "--db", database)
    assert table.exit_code == 0 and "+0.11" in table.stdout
    missing = run("assess-history", "nobody", "--db", database)
    assert missing.exit_code == 2 and "no assessment of 'nobody'" in missing.stderr
