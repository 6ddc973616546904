"""The readiness page's figures and exports, built from saved snapshots without a browser."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.lean_readiness import (
    HEATMAP_FONT_SIZE,
    NO_PROGRESS_YET,
    archetype_figure,
    cohort_figure,
    gap_figure,
    radar_figure,
    radar_label,
    ranking_rows,
)
from launcher.seeding import seed_demo_smes
from readiness import DATABASE_ENV
from readiness.answers import load_answers
from readiness.assessment import run_assessment
from readiness.evidence import Evidence
from readiness.indicator_file import indicators_from_dict, load_indicators
from readiness.persistence import ReadinessStore, Snapshot
from readiness.report import (
    cohort,
    dimension_rows,
    flag_lines,
    gate_notes,
    indicator_cards,
    indicator_parts,
    indicator_text,
    recommendation_rows,
    report_csv,
)
from shopfloor.store import ENV_VARS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "readiness"


@pytest.fixture
def saved(tmp_path: Path) -> Iterator[tuple[ReadinessStore, list[Snapshot]]]:
    """SME-A scored twice (RC improved the second time) and SME-B once."""
    store = ReadinessStore(tmp_path / "readiness.db")
    a = load_answers(EXAMPLES / "sme-a.yaml")
    evidence = load_indicators(EXAMPLES / "sme-a-indicators.yaml")
    better = Evidence(evidence.indicators.with_value("RC", 0.6), evidence.window_start)
    snapshots = [store.save(run_assessment(a, e)) for e in (evidence, better)]
    b = load_answers(EXAMPLES / "sme-b.yaml")
    store.save(run_assessment(b, load_indicators(EXAMPLES / "sme-b-indicators.yaml")))
    yield store, snapshots
    store.close()


def test_csv_has_one_row_per_dimension(saved: tuple[ReadinessStore, list[Snapshot]]) -> None:
    result = saved[1][0].result
    rows = list(csv.DictReader(io.StringIO(report_csv(result))))
    assert [r["dimension"] for r in rows] == ["D1", "D2", "D3", "D4", "D5", "D6", "D7"]
    d5 = rows[4]
    assert (d5["sme"], d5["final"], d5["cap"], d5["target"]) == ("sme-a", "2.0", "2", "3.0")
    assert d5["binding_gates"] == "G3: needs RC >= 0.60"
    assert {r["index"] for r in rows} == {"2.675"}
    assert rows[5]["binding_gates"] == ""  # D6: no gate holds its score down


def test_radar_and_gap_bars(saved: tuple[ReadinessStore, list[Snapshot]]) -> None:
    result = saved[1][0].result
    radar = radar_figure(result)
    assert [t.name for t in radar.data] == ["questionnaire", "evidence", "final", "target", "cap"]
    final = radar.data[2]
    assert list(final.r) == [2.25, 2.7, 3.5, 3.0, 2.0, 2.7, 2.5, 2.25]  # closed polygon
    assert radar.data[1].r[0] is None  # D1 has no evidence
    assert list(final.theta) == ["D1", "D2", "D3", "D4", "D5", "D6", "D7", "D1"]
    assert final.customdata[3] == "D4 Visibility & performance mgmt"  # full name on hover
    gaps = gap_figure(result)
    assert list(gaps.data[1].x)[4] == pytest.approx(1.0)
    gates = gaps.data[2]  # the binding gate's id past the bar, its requirement on hover
    assert (gates.text[4], gates.hovertext[4], gates.x[4]) == ("G3", "G3: needs RC >= 0.60", 3.0)
    assert gaps.layout.xaxis.range == (0, 5)
    # D2 and D4 are capped at 3 too, but their S does not reach it: only D5's gate binds
    assert gate_notes(result) == ["D5 Maintenance & problem solving: G3: needs RC >= 0.60"]
    assert [t for t in gates.text if t] == ["G3"]


def test_radar_labels_fit_beside_the_chart(saved: tuple[ReadinessStore, list[Snapshot]]) -> None:
    """The reviewer saw "nt", "ng" and "…leadershi": each label now wraps onto short lines,
    and the margins leave room for them."""
    radar = radar_figure(saved[1][0].result)
    angular = radar.layout.polar.angularaxis
    assert list(angular.tickvals) == ["D1", "D2", "D3", "D4", "D5", "D6", "D7"]
    assert angular.ticktext[3] == "D4 Visibility &<br>performance mgmt"
    assert all(len(line) <= 16 for label in angular.ticktext for line in label.split("<br>"))
    assert radar.layout.margin.l >= 80 and radar.layout.margin.r >= 80
    assert radar_label("D5", "Maintenance & problem solving") == (
        "D5 Maintenance &<br>problem solving"
    )


def test_indicator_cards_carry_their_trend(saved: tuple[ReadinessStore, list[Snapshot]]) -> None:
    store, _ = saved
    cards = {c.name: c for c in indicator_cards([s.result for s in store.snapshots("sme-a")])}
    assert cards["RC"].trend == pytest.approx([62 / 182, 0.6])
    assert (cards["RC"].value, cards["RC"].note, cards["RC"].score) == ("60%", "", 3)
    assert (cards["ART"].value, cards["ART"].note) == ("42 min", "median, n = 37")
    assert cards["ART"].text == "42 min (median, n = 37)"
    assert cards["ART"].trend == [42.0, 42.0]


@pytest.mark.parametrize(
    ("value", "headline", "note", "text"),
    [
        (0.341, "34%", "", "34%"),
        (None, "-", "not measured", "not measured"),
        ({"logging": False, "median_minutes": None, "events": 0}, "-", "no alarm logging",
         "no alarm logging"),
        ({"logging": True, "median_minutes": None, "events": 2}, "-", "2 events, needs 5",
         "2 events, needs 5"),
        ({"logging": True, "median_minutes": 42.0, "events": 37, "within_15_min": 0.2},
         "42 min", "median, n = 37, 20% within 15 min",
         "42 min (median, n = 37, 20% within 15 min)"),
    ],
)  # fmt: skip
def test_indicator_values_have_a_headline_that_fits_a_card(
    value: object, headline: str, note: str, text: str
) -> None:
    """The reviewer saw "not me…" and "2 even…": the card's value is at most six characters,
    the rest goes to a note below it."""
    assert indicator_parts(value) == (headline, note) and len(headline) <= 6
    assert indicator_text(value) == text


def test_flags_say_what_they_mean(saved: tuple[ReadinessStore, list[Snapshot]]) -> None:
    store, _ = saved
    sme_b = store.snapshots("sme-b")[-1].result
    assert flag_lines(sme_b) == [
        "D4 Visibility & performance mgmt, over-claim: you claimed more than your machines "
        "show (Q 3.00 - E 1.50 = +1.50); next: verification walk (gemba visit)"
    ]
    assert flag_lines(saved[1][0].result) == []


def test_recommendations_are_ranked_with_their_what_if(
    saved: tuple[ReadinessStore, list[Snapshot]],
) -> None:
    rows = recommendation_rows(saved[1][0].result)
    assert [r.dimension for r in rows] == ["D5", "D7", "D1", "D2", "D6"]
    assert rows[0].basis == "RC 34% -> 0.6 (G3)"
    assert rows[0].what_if_index == pytest.approx(2.78, abs=1e-9)


def test_cohort_ranks_and_anonymises(saved: tuple[ReadinessStore, list[Snapshot]]) -> None:
    store, _ = saved
    latest = {sme: store.snapshots(sme)[-1].result for sme in store.smes()}
    named, hidden = cohort(latest), cohort(latest, anonymise=True)
    assert named.labels == [
        "SME-A (injection moulding, worked example)",
        "SME-B (metal machining, worked example)",
    ]
    assert hidden.labels == ["SME 1", "SME 2"]
    assert named.dimensions == ["D1", "D2", "D3", "D4", "D5", "D6", "D7"]
    assert named.median[5] == pytest.approx((2.7 + 0.4) / 2)
    heatmap = cohort_figure(hidden).data[0]
    assert list(heatmap.y) == ["SME 1 (R 2.78)", "SME 2 (R 2.10)", "cohort median"]
    assert heatmap.textfont.size == HEATMAP_FONT_SIZE >= 14
    ranked = sorted(latest.values(), key=lambda r: -r["index"])
    assert named.archetypes == [r["archetype"]["name"] for r in ranked]
    assert named.lean == [r["archetype"]["lean_index"] for r in ranked]
    assert named.digital == [r["archetype"]["digital_index"] for r in ranked]
    # one trace per SME, named in the legend: no label beside a marker to overlap or sit on
    # the threshold line
    quadrant = archetype_figure(hidden).data
    assert [t.name for t in quadrant] == ["SME 1", "SME 2"]
    assert [t.x[0] for t in quadrant] == named.lean and [t.y[0] for t in quadrant] == named.digital
    assert all(t.mode == "markers" for t in quadrant)
    assert len({(t.marker.color, t.marker.symbol) for t in quadrant}) == 2
    assert ranking_rows(hidden)[0] == {  # figures as text in the visitor's language
        "rank": 1, "SME": "SME 1", "R": "2.78", "archetype": named.archetypes[0],
        "Λ lean": f"{named.lean[0]:.2f}", "Δ digital": f"{named.digital[0]:.2f}",
    }  # fmt: skip


def test_a_snapshot_gives_back_its_answers_and_evidence(
    saved: tuple[ReadinessStore, list[Snapshot]],
) -> None:
    """What the questionnaire form starts from, and scores changed answers against."""
    store, snapshots = saved
    answers = load_answers(EXAMPLES / "sme-a.yaml")
    evidence = load_indicators(EXAMPLES / "sme-a-indicators.yaml")
    assert store.answers(snapshots[0]) == answers
    again = snapshots[0].evidence()
    assert again is not None and again.indicators == evidence.indicators
    assert again.window_start == evidence.window_start
    rescored = run_assessment(answers, again)
    assert [r.final for r in dimension_rows(snapshots[0].result)] == [
        d.final for d in rescored.scorecard.dimensions
    ]


def readiness_app() -> None:
    """The page as the dashboard runs it, with the plant and store of the environment."""
    import os

    from dashboard.lean_readiness import readiness_page
    from shopfloor.plant import load_plant
    from shopfloor.store import StoreSettings, open_store

    plant = load_plant(os.environ["SHOPFLOOR_PLANT"])
    readiness_page(plant, open_store(StoreSettings.from_env()))


def test_the_page_shows_an_indicator_that_fell_below_its_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polimer connected every machine on Monday and one in three on Tuesday: the alert stands
    above the tabs, and the Progress tab keeps the history of falls."""
    database = tmp_path / "readiness.db"
    moulding = load_answers(EXAMPLES / "moulding.yaml")
    full = {name: 1.0 for name in ("DC", "CC", "OV", "RC", "STD")}
    monday = datetime(2026, 11, 2, 6, tzinfo=UTC)
    with ReadinessStore(database) as store:
        for day, cc in ((0, 1.0), (1, 1 / 3)):
            evidence = Evidence(indicators_from_dict({**full, "CC": cc}), source="test")
            store.save(run_assessment(moulding, evidence, monday + timedelta(days=day)))
    monkeypatch.setenv(DATABASE_ENV, str(database))
    monkeypatch.setenv("SHOPFLOOR_PLANT", str(EXAMPLES.parent / "plant.yaml"))
    monkeypatch.setenv(ENV_VARS["url"], f"sqlite:{tmp_path / 'store.db'}")
    page = AppTest.from_function(readiness_app, default_timeout=60).run()
    assert not page.exception
    alert = (
        "2026-11-03: CC (connectivity coverage) fell below gate G1: 33%, needs CC >= 0.50;"
        " D3 is capped at 2"
    )
    assert [e.value for e in page.error] == [alert]
    progress = page.tabs[4]
    assert any(alert in m.value for m in progress.markdown)
    assert not progress.info and len(progress.get("plotly_chart")) == 1  # two snapshots


def test_the_page_scores_changed_answers_with_live_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "readiness.db"
    moulding = load_answers(EXAMPLES / "moulding.yaml")
    with ReadinessStore(database) as store:
        store.save(run_assessment(moulding, None))
    monkeypatch.setenv(DATABASE_ENV, str(database))
    monkeypatch.setenv("SHOPFLOOR_PLANT", str(EXAMPLES.parent / "plant.yaml"))
    monkeypatch.setenv(ENV_VARS["url"], f"sqlite:{tmp_path / 'store.db'}")
    page = AppTest.from_function(readiness_app, default_timeout=60).run()
    assert not page.exception
    assert [m.value for m in page.metric[:3]] == ["1.60", "1 Beginner", "Starter"]
    page.selectbox(key="polimer-Q5").set_value(3)
    page.checkbox[0].check()
    page.button[0].click().run()
    assert not page.exception
    with ReadinessStore(database) as store:
        latest = store.snapshots("polimer")[-1].result
    # the empty store measures nothing connected, yet the evidence is measured now
    assert (latest["answers"]["Q5"], latest["mode"]) == (3, "evidence")
    assert latest["indicators"]["CC"]["value"] == 0.0


def test_the_demo_page_reads_calmly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polimer as the demo seeds it: its one deliberate flag in an info box, not a warning;
    each item's own options; short indicator values; a message instead of a flat progress."""
    database = tmp_path / "readiness.db"
    seed_demo_smes(database, EXAMPLES.parent)
    monkeypatch.setenv(DATABASE_ENV, str(database))
    monkeypatch.setenv("SHOPFLOOR_PLANT", str(EXAMPLES.parent / "plant.yaml"))
    monkeypatch.setenv(ENV_VARS["url"], f"sqlite:{tmp_path / 'store.db'}")
    page = AppTest.from_function(readiness_app, default_timeout=60).run()
    assert not page.exception
    assert not page.warning and not page.error
    profile, indicators, questionnaire, progress = (page.tabs[i] for i in (0, 1, 3, 4))
    [claims] = profile.info
    assert "Claim check" in claims.value
    assert "D2 Lean flow & standard work, under-claim: your machines show more than you" in (
        claims.value
    )
    assert "G2: needs DU >= 0.75" in profile.caption[0].value  # the gap chart's gate notes
    values = {m.label: m.value for m in indicators.metric}
    assert values["CC"] == "100%" and values["DU"] == "-" and values["ART"] == "-"
    assert all(len(v) <= 6 for v in values.values())
    assert any("anomaly response time" in c.value and "2 events, needs 5 · no score" in c.value
               for c in indicators.caption)  # fmt: skip
    q10 = questionnaire.selectbox(key="polimer-Q10")
    assert q10.options[4] == "4: Automatic" and q10.value == 4
    assert page.selectbox(key="polimer-Q4").options[2] == (
        "2: Written rules for some systems (passwords, backups)"
    )
    assert page.selectbox(key="polimer-Q14").options[4] == "4: weekly"
    assert [i.value for i in progress.info] == [NO_PROGRESS_YET] and not progress.metric
