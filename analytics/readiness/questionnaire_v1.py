"""Version 1 of the Lean 4.0 readiness questionnaire: seven dimensions, 28 items.

Dimensions mix lean practice and 4.0 technology; their level descriptors follow acatech's
stages 2-6, the anchored-answer and %-bracket style follows the IMPULS/VDMA readiness check.
"""

from __future__ import annotations

from analytics.readiness.questionnaire import Dimension, Item, Questionnaire, Scale

A, P, F = Scale.ANCHORED, Scale.SHARE, Scale.FREQUENCY

_DIMENSIONS = (
    Dimension(
        id="D1",
        name="Strategy & leadership",
        weight=0.10,
        levels=(
            "No improvement goals",
            "Ad-hoc projects",
            "Written lean or digital goals",
            "Joint lean+digital roadmap, KPIs reviewed monthly",
            "Funded portfolio with benefits tracked",
            "Roadmap re-planned from live KPIs",
        ),
        indicators=(),
    ),
    Dimension(
        id="D2",
        name="Lean flow & standard work",
        weight=0.15,
        levels=(
            "No standards",
            "5S in pockets",
            "Standard work on key operations",
            "Standard times for most volume; changeovers recorded",
            "Pull/WIP limits; SMED results measured",
            "Flow adjusted automatically (e-kanban, dynamic takt)",
        ),
        indicators=("STD", "CO"),
    ),
    Dimension(
        id="D3",
        name="Connectivity & data",
        weight=0.15,
        levels=(
            "Paper only",
            "Spreadsheets",
            "Some machines send data",
            "Most machines send data, few gaps",
            "Data integrated with ERP/MES, contextualised",
            "Self-configuring data model; edge analytics",
        ),
        indicators=("DC", "CC"),
    ),
    Dimension(
        id="D4",
        name="Visibility & performance mgmt",
        weight=0.15,
        levels=(
            "No KPIs",
            "Output totals",
            "OEE on some machines, end of shift",
            "Near real-time OEE used at daily meetings",
            "Loss Pareto and root causes from data",
            "Forecasts and what-if of losses",
        ),
        indicators=("OV", "DU"),
    ),
    Dimension(
        id="D5",
        name="Maintenance & problem solving",
        weight=0.15,
        levels=(
            "Breakdown only",
            "Informal fixes",
            "Preventive plan; some stop reasons",
            "Most stop time reason-coded; andon with escalation",
            "Condition-based; fast response",
            "Predictive maintenance; automatic dispatch",
        ),
        indicators=("RC", "ART"),
    ),
    Dimension(
        id="D6",
        name="Energy & resources",
        weight=0.10,
        levels=(
            "Bill only",
            "Main meter read",
            "Some sub-meters",
            "Major consumers metered; kWh/part known",
            "Energy losses tied to states and actions",
            "Load optimised and predicted",
        ),
        indicators=("EC", "EV"),
    ),
    Dimension(
        id="D7",
        name="People & CI culture",
        weight=0.20,
        levels=(
            "No training",
            "Few trained",
            "Basic lean training",
            "Most staff trained (lean + data); suggestions weekly",
            "Operators co-design digital tools",
            "Self-directed teams improving with data",
        ),
        indicators=(),
    ),
)

_ITEMS = (
    ("D1", "Written plan linking lean and digital goals", A),
    ("D1", "Management reviews production KPIs", F),
    ("D1", "Budget/time ring-fenced for improvement and digital projects", A),
    ("D1", "Rules for shop-floor data ownership, access and cybersecurity", A),
    ("D2", "5S / workplace organisation level", A),
    ("D2", "Operations with documented standard work incl. standard cycle time", P),
    ("D2", "Material flow under pull/WIP control (kanban, e-kanban)", P),
    ("D2", "Changeovers timed and systematically reduced (SMED)", A),
    ("D3", "Machines that deliver data automatically", P),
    (
        "D3",
        "Capture of counts: 0 none, 1 paper, 2 typed into spreadsheet, 3 terminal entry, "
        "4 automatic, 5 automatic + order/product context",
        A,
    ),
    (
        "D3",
        "Data storage: 0 none ... 3 central historian/DB, 4 linked to ERP/MES, "
        "5 unified contextual model",
        A,
    ),
    ("D3", "Ability to retrofit legacy machines (sensors, gateways)", A),
    ("D4", "Machines with OEE (or equivalent) calculated", P),
    ("D4", "Shop-floor meetings held at a performance board/dashboard", F),
    (
        "D4",
        "Status visibility: 0 none, 1 walk round, 2 shift report, 3 live screens, "
        "4 pushed alerts, 5 forecasts",
        A,
    ),
    (
        "D4",
        "Loss analysis: 0 none, 1 totals, 2 by category, 3 Pareto, "
        "4 root cause with process data, 5 predictive",
        A,
    ),
    ("D5", "Stop events with a recorded reason", P),
    (
        "D5",
        "Maintenance: 0 breakdown, 1 some PM, 2 PM plan, 3 TPM incl. autonomous, "
        "4 condition-based, 5 predictive",
        A,
    ),
    ("D5", "Structured problem solving (5-why, A3, 8D) used", F),
    (
        "D5",
        "Abnormality response: 0 none, 1 informal, 2 defined escalation, 3 andon, "
        "4 digital andon with timestamps, 5 auto-detect + dispatch",
        A,
    ),
    ("D6", "Electricity consumption that is sub-metered", P),
    ("D6", "Energy per unit / per good part tracked", A),
    ("D6", "Environment (temp., humidity) monitored where it affects quality or safety", A),
    ("D6", "Energy/material waste actions with measured results", A),
    ("D7", "Staff trained in lean basics", P),
    ("D7", "Staff trained to use production data/dashboards", P),
    ("D7", "Employee improvement ideas implemented", F),
    ("D7", "Operators involved in designing or choosing digital tools", A),
)

QUESTIONNAIRE_V1 = Questionnaire(
    version=1,
    dimensions=_DIMENSIONS,
    items=tuple(
        Item(id=f"Q{number}", dimension=dimension, text=text, scale=scale)
        for number, (dimension, text, scale) in enumerate(_ITEMS, 1)
    ),
)
