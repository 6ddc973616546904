"""Version 1 of the Lean 4.0 readiness questionnaire: seven dimensions, 28 items.

Dimensions mix lean practice and 4.0 technology; their level descriptors follow acatech's
stages 2-6, the anchored-answer and %-bracket style follows the IMPULS/VDMA readiness check.
"""

from __future__ import annotations

from readiness.questionnaire import Dimension, Item, Options, Questionnaire, Scale

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

# Anchored items answer with their own statement per level. Where the specification (B2)
# spells the anchors out (Q10, Q11, Q15, Q16, Q18, Q20) they are its words; Q11's levels 1-2,
# elided there, and the other anchored items' statements follow their dimension's B1 row,
# phrased for the question asked.
_ITEMS: tuple[tuple[str, str, Scale, Options | None], ...] = (
    ("D1", "Written plan linking lean and digital goals", A, (
        "No improvement goals",
        "Ad-hoc projects, no written plan",
        "Written lean or digital goals",
        "Joint lean+digital roadmap, KPIs reviewed monthly",
        "Funded roadmap with benefits tracked",
        "Roadmap re-planned from live KPIs",
    )),
    ("D1", "Management reviews production KPIs", F, None),
    ("D1", "Budget/time ring-fenced for improvement and digital projects", A, (
        "None",
        "Case by case, for ad-hoc projects",
        "Yearly budget for lean or digital projects",
        "Joint budget and time for the lean+digital roadmap",
        "Funded project portfolio with benefits tracked",
        "Budget re-allocated from live KPIs",
    )),
    ("D1", "Rules for shop-floor data ownership, access and cybersecurity", A, (
        "No rules",
        "Informal habits (shared passwords, someone knows)",
        "Written rules for some systems (passwords, backups)",
        "Written policy for shop-floor data: owners, access rights, backups",
        "Policy enforced: roles, segmented network, incidents tracked",
        "Access and threats monitored continuously, rules updated from it",
    )),
    ("D2", "5S / workplace organisation level", A, (
        "No 5S",
        "5S in pockets",
        "5S in every area (sort, set in order, shine)",
        "5S standardised, audited regularly",
        "5S sustained; audit results tracked and acted on",
        "Self-sustaining; deviations visible at a glance, fixed by the team",
    )),
    ("D2", "Operations with documented standard work incl. standard cycle time", P, None),
    ("D2", "Material flow under pull/WIP control (kanban, e-kanban)", P, None),
    ("D2", "Changeovers timed and systematically reduced (SMED)", A, (
        "Not timed",
        "Timed now and then",
        "Standard changeover procedure on key machines",
        "Every changeover recorded with its duration",
        "SMED workshops with measured reductions",
        "Changeovers sequenced and planned from live data",
    )),
    ("D3", "Machines that deliver data automatically", P, None),
    ("D3", "Capture of counts", A, (
        "None",
        "Paper",
        "Typed into spreadsheet",
        "Terminal entry",
        "Automatic",
        "Automatic + order/product context",
    )),
    ("D3", "Data storage", A, (
        "None",
        "Spreadsheets and files on PCs",
        "Separate machine or vendor databases",
        "Central historian/DB",
        "Linked to ERP/MES",
        "Unified contextual model",
    )),
    ("D3", "Ability to retrofit legacy machines (sensors, gateways)", A, (
        "Not possible or not known how",
        "Only through the machine builder",
        "Piloted on one machine",
        "Done on most machines with standard kits",
        "Standard retrofit package, data linked to ERP/MES",
        "Plug-and-play: new sensors configure themselves, edge analytics",
    )),
    ("D4", "Machines with OEE (or equivalent) calculated", P, None),
    ("D4", "Shop-floor meetings held at a performance board/dashboard", F, None),
    ("D4", "Status visibility", A, (
        "None",
        "Walk round",
        "Shift report",
        "Live screens",
        "Pushed alerts",
        "Forecasts",
    )),
    ("D4", "Loss analysis", A, (
        "None",
        "Totals",
        "By category",
        "Pareto",
        "Root cause with process data",
        "Predictive",
    )),
    ("D5", "Stop events with a recorded reason", P, None),
    ("D5", "Maintenance", A, (
        "Breakdown",
        "Some PM",
        "PM plan",
        "TPM incl. autonomous",
        "Condition-based",
        "Predictive",
    )),
    ("D5", "Structured problem solving (5-why, A3, 8D) used", F, None),
    ("D5", "Abnormality response", A, (
        "None",
        "Informal",
        "Defined escalation",
        "Andon",
        "Digital andon with timestamps",
        "Auto-detect + dispatch",
    )),
    ("D6", "Electricity consumption that is sub-metered", P, None),
    ("D6", "Energy per unit / per good part tracked", A, (
        "Bill only",
        "Main meter read monthly",
        "kWh per area or machine from some sub-meters",
        "kWh per part known for the major consumers",
        "kWh per good part tied to machine states and actions",
        "Energy per part predicted and optimised",
    )),
    ("D6", "Environment (temp., humidity) monitored where it affects quality or safety", A, (
        "Not monitored",
        "Read by hand now and then",
        "Logged at some critical points",
        "Every critical zone monitored continuously",
        "Linked to quality and process data, alarms acted on",
        "Predicted and controlled automatically",
    )),
    ("D6", "Energy/material waste actions with measured results", A, (
        "None",
        "Occasional actions, not measured",
        "Planned actions, results estimated",
        "Results measured on the major consumers",
        "Losses tied to machine states; savings tracked per action",
        "Load and material use optimised and predicted",
    )),
    ("D7", "Staff trained in lean basics", P, None),
    ("D7", "Staff trained to use production data/dashboards", P, None),
    ("D7", "Employee improvement ideas implemented", F, None),
    ("D7", "Operators involved in designing or choosing digital tools", A, (
        "Never",
        "Told once tools are chosen",
        "Asked for feedback now and then",
        "Consulted in choosing and testing",
        "Operators co-design digital tools",
        "Operator teams build and improve their own tools with data",
    )),
)  # fmt: skip

QUESTIONNAIRE_V1 = Questionnaire(
    version=1,
    dimensions=_DIMENSIONS,
    items=tuple(
        Item(id=f"Q{number}", dimension=dimension, text=text, scale=scale, anchors=anchors)
        for number, (dimension, text, scale, anchors) in enumerate(_ITEMS, 1)
    ),
)
