"""The three demo SMEs: their answers with evidence computed from a run of their simulated
plant come out as three different archetypes, and the demo seeds them once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from launcher.seeding import seed_demo_smes, simulated_evidence
from readiness.answers import load_answers
from readiness.assessment import run_assessment
from readiness.persistence import ReadinessStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize(
    ("name", "archetype", "energy_coverage", "changeovers", "index", "flags"),
    [
        # One product all shift. Under-claims D2: the presses hold every mould's cycle time.
        ("moulding", "Tech-led", 1.0, None, 2.93, ["under-claim D2"]),
        # The turning centre's rated power is unknown; five size changes, each a logged setup.
        # Under-claims D3: the centre's retrofit connected machines it runs on spreadsheets.
        ("machining", "Lean-led", None, 1.0, 3.09, ["under-claim D3"]),
        ("packaging", "Lean 4.0 integrator", 1.0, None, 3.725, []),
    ],
)
def test_demo_sme_archetype_from_its_simulated_plant(
    name: str,
    archetype: str,
    energy_coverage: float | None,
    changeovers: float | None,
    index: float,
    flags: list[str],
) -> None:
    """Each SME tells its story: its archetype, and only the claim flag its answers file
    explains (the simulated evidence is near-perfect, so answers must be near it too)."""
    answers = load_answers(EXAMPLES / "readiness" / f"{name}.yaml")
    evidence = simulated_evidence(EXAMPLES / "scenarios" / f"{name}.yaml", answers.risk_zones)
    card = run_assessment(answers, evidence).scorecard
    indicators = evidence.indicators
    assert (indicators.CC, indicators.DC, indicators.STD) == (1.0, 1.0, 1.0)
    got = indicators.to_dict()  # EC: every machine metered and connected, or unknown
    assert (got["DU"], got["EC"], got["CO"]) == (None, energy_coverage, changeovers)
    assert card.archetype.name == archetype, (card.archetype, [d.final for d in card.dimensions])
    assert [f"{f.kind} {f.dimension}" for f in card.flags] == flags
    assert card.index == pytest.approx(index, abs=1e-9)


def test_the_demo_seeds_three_smes_of_different_archetypes_once(tmp_path: Path) -> None:
    database = tmp_path / "readiness.db"
    assert seed_demo_smes(database, EXAMPLES) == ["polimer", "metalform", "nutrisnack"]
    assert seed_demo_smes(database, EXAMPLES) == []  # a restarted demo keeps the history
    with ReadinessStore(database) as store:
        snapshots = {sme: store.snapshots(sme) for sme in store.smes()}
    assert [len(s) for s in snapshots.values()] == [1, 1, 1]
    archetypes = {sme: s[0].archetype for sme, s in snapshots.items()}
    assert archetypes == {
        "polimer": "Tech-led",
        "metalform": "Lean-led",
        "nutrisnack": "Lean 4.0 integrator",
    }
    assert all(s[0].result["mode"] == "evidence" for s in snapshots.values())


def test_a_demo_being_stopped_begins_no_further_sme(tmp_path: Path) -> None:
    stopping = threading.Event()
    stopping.set()
    assert seed_demo_smes(tmp_path / "readiness.db", EXAMPLES, stopping=stopping) == []
