"""Version 1 of the Lean 4.0 readiness questionnaire: seven dimensions, 28 items.

Dimensions mix lean practice and 4.0 technology; their level descriptors follow acatech's
stages 2-6, the anchored-answer and %-bracket style follows the IMPULS/VDMA readiness check.

Names, level descriptors, items and anchors are English, marked with `N_` for the catalogues,
and translated where they are shown (`readiness.questionnaire.translate`).
"""

from __future__ import annotations

from readiness.questionnaire import Dimension, Item, Options, Questionnaire, Scale
from shopfloor.i18n import N_

A, P, F = Scale.ANCHORED, Scale.SHARE, Scale.FREQUENCY

_DIMENSIONS = (
    Dimension(
        id="D1",
        name=N_("Strategy & leadership"),
        weight=0.10,
        levels=(
            N_("No improvement goals"),
            N_("Ad-hoc projects"),
            N_("Written lean or digital goals"),
            N_("Joint lean+digital roadmap, KPIs reviewed monthly"),
            N_("Funded portfolio with benefits tracked"),
            N_("Roadmap re-planned from live KPIs"),
        ),
        indicators=(),
    ),
    Dimension(
        id="D2",
        name=N_("Lean flow & standard work"),
        weight=0.15,
        levels=(
            N_("No standards"),
            N_("5S in pockets"),
            N_("Standard work on key operations"),
            N_("Standard times for most volume; changeovers recorded"),
            N_("Pull/WIP limits; SMED results measured"),
            N_("Flow adjusted automatically (e-kanban, dynamic takt)"),
        ),
        indicators=("STD", "CO"),
    ),
    Dimension(
        id="D3",
        name=N_("Connectivity & data"),
        weight=0.15,
        levels=(
            N_("Paper only"),
            N_("Spreadsheets"),
            N_("Some machines send data"),
            N_("Most machines send data, few gaps"),
            N_("Data integrated with ERP/MES, contextualised"),
            N_("Self-configuring data model; edge analytics"),
        ),
        indicators=("DC", "CC"),
    ),
    Dimension(
        id="D4",
        name=N_("Visibility & performance mgmt"),
        weight=0.15,
        levels=(
            N_("No KPIs"),
            N_("Output totals"),
            N_("OEE on some machines, end of shift"),
            N_("Near real-time OEE used at daily meetings"),
            N_("Loss Pareto and root causes from data"),
            N_("Forecasts and what-if of losses"),
        ),
        indicators=("OV", "DU"),
    ),
    Dimension(
        id="D5",
        name=N_("Maintenance & problem solving"),
        weight=0.15,
        levels=(
            N_("Breakdown only"),
            N_("Informal fixes"),
            N_("Preventive plan; some stop reasons"),
            N_("Most stop time reason-coded; andon with escalation"),
            N_("Condition-based; fast response"),
            N_("Predictive maintenance; automatic dispatch"),
        ),
        indicators=("RC", "ART"),
    ),
    Dimension(
        id="D6",
        name=N_("Energy & resources"),
        weight=0.10,
        levels=(
            N_("Bill only"),
            N_("Main meter read"),
            N_("Some sub-meters"),
            N_("Major consumers metered; kWh/part known"),
            N_("Energy losses tied to states and actions"),
            N_("Load optimised and predicted"),
        ),
        indicators=("EC", "EV"),
    ),
    Dimension(
        id="D7",
        name=N_("People & CI culture"),
        weight=0.20,
        levels=(
            N_("No training"),
            N_("Few trained"),
            N_("Basic lean training"),
            N_("Most staff trained (lean + data); suggestions weekly"),
            N_("Operators co-design digital tools"),
            N_("Self-directed teams improving with data"),
        ),
        indicators=(),
    ),
)

# Anchored items answer with their own statement per level. Where the specification (B2)
# spells the anchors out (Q10, Q11, Q15, Q16, Q18, Q20) they are its words; Q11's levels 1-2,
# elided there, and the other anchored items' statements follow their dimension's B1 row,
# phrased for the question asked.
_ITEMS: tuple[tuple[str, str, Scale, Options | None], ...] = (
    ("D1", N_("Written plan linking lean and digital goals"), A, (
        N_("No improvement goals"),
        N_("Ad-hoc projects, no written plan"),
        N_("Written lean or digital goals"),
        N_("Joint lean+digital roadmap, KPIs reviewed monthly"),
        N_("Funded roadmap with benefits tracked"),
        N_("Roadmap re-planned from live KPIs"),
    )),
    ("D1", N_("Management reviews production KPIs"), F, None),
    ("D1", N_("Budget/time ring-fenced for improvement and digital projects"), A, (
        N_("None"),
        N_("Case by case, for ad-hoc projects"),
        N_("Yearly budget for lean or digital projects"),
        N_("Joint budget and time for the lean+digital roadmap"),
        N_("Funded project portfolio with benefits tracked"),
        N_("Budget re-allocated from live KPIs"),
    )),
    ("D1", N_("Rules for shop-floor data ownership, access and cybersecurity"), A, (
        N_("No rules"),
        N_("Informal habits (shared passwords, someone knows)"),
        N_("Written rules for some systems (passwords, backups)"),
        N_("Written policy for shop-floor data: owners, access rights, backups"),
        N_("Policy enforced: roles, segmented network, incidents tracked"),
        N_("Access and threats monitored continuously, rules updated from it"),
    )),
    ("D2", N_("5S / workplace organisation level"), A, (
        N_("No 5S"),
        N_("5S in pockets"),
        N_("5S in every area (sort, set in order, shine)"),
        N_("5S standardised, audited regularly"),
        N_("5S sustained; audit results tracked and acted on"),
        N_("Self-sustaining; deviations visible at a glance, fixed by the team"),
    )),
    ("D2", N_("Operations with documented standard work incl. standard cycle time"), P, None),
    ("D2", N_("Material flow under pull/WIP control (kanban, e-kanban)"), P, None),
    ("D2", N_("Changeovers timed and systematically reduced (SMED)"), A, (
        N_("Not timed"),
        N_("Timed now and then"),
        N_("Standard changeover procedure on key machines"),
        N_("Every changeover recorded with its duration"),
        N_("SMED workshops with measured reductions"),
        N_("Changeovers sequenced and planned from live data"),
    )),
    ("D3", N_("Machines that deliver data automatically"), P, None),
    ("D3", N_("Capture of counts"), A, (
        N_("None"),
        N_("Paper"),
        N_("Typed into spreadsheet"),
        N_("Terminal entry"),
        N_("Automatic"),
        N_("Automatic + order/product context"),
    )),
    ("D3", N_("Data storage"), A, (
        N_("None"),
        N_("Spreadsheets and files on PCs"),
        N_("Separate machine or vendor databases"),
        N_("Central historian/DB"),
        N_("Linked to ERP/MES"),
        N_("Unified contextual model"),
    )),
    ("D3", N_("Ability to retrofit legacy machines (sensors, gateways)"), A, (
        N_("Not possible or not known how"),
        N_("Only through the machine builder"),
        N_("Piloted on one machine"),
        N_("Done on most machines with standard kits"),
        N_("Standard retrofit package, data linked to ERP/MES"),
        N_("Plug-and-play: new sensors configure themselves, edge analytics"),
    )),
    ("D4", N_("Machines with OEE (or equivalent) calculated"), P, None),
    ("D4", N_("Shop-floor meetings held at a performance board/dashboard"), F, None),
    ("D4", N_("Status visibility"), A, (
        N_("None"),
        N_("Walk round"),
        N_("Shift report"),
        N_("Live screens"),
        N_("Pushed alerts"),
        N_("Forecasts"),
    )),
    ("D4", N_("Loss analysis"), A, (
        N_("None"),
        N_("Totals"),
        N_("By category"),
        N_("Pareto"),
        N_("Root cause with process data"),
        N_("Predictive"),
    )),
    ("D5", N_("Stop events with a recorded reason"), P, None),
    ("D5", N_("Maintenance"), A, (
        N_("Breakdown"),
        N_("Some PM"),
        N_("PM plan"),
        N_("TPM incl. autonomous"),
        N_("Condition-based"),
        N_("Predictive"),
    )),
    ("D5", N_("Structured problem solving (5-why, A3, 8D) used"), F, None),
    ("D5", N_("Abnormality response"), A, (
        N_("None"),
        N_("Informal"),
        N_("Defined escalation"),
        N_("Andon"),
        N_("Digital andon with timestamps"),
        N_("Auto-detect + dispatch"),
    )),
    ("D6", N_("Electricity consumption that is sub-metered"), P, None),
    ("D6", N_("Energy per unit / per good part tracked"), A, (
        N_("Bill only"),
        N_("Main meter read monthly"),
        N_("kWh per area or machine from some sub-meters"),
        N_("kWh per part known for the major consumers"),
        N_("kWh per good part tied to machine states and actions"),
        N_("Energy per part predicted and optimised"),
    )),
    ("D6", N_("Environment (temp., humidity) monitored where it affects quality or safety"), A, (
        N_("Not monitored"),
        N_("Read by hand now and then"),
        N_("Logged at some critical points"),
        N_("Every critical zone monitored continuously"),
        N_("Linked to quality and process data, alarms acted on"),
        N_("Predicted and controlled automatically"),
    )),
    ("D6", N_("Energy/material waste actions with measured results"), A, (
        N_("None"),
        N_("Occasional actions, not measured"),
        N_("Planned actions, results estimated"),
        N_("Results measured on the major consumers"),
        N_("Losses tied to machine states; savings tracked per action"),
        N_("Load and material use optimised and predicted"),
    )),
    ("D7", N_("Staff trained in lean basics"), P, None),
    ("D7", N_("Staff trained to use production data/dashboards"), P, None),
    ("D7", N_("Employee improvement ideas implemented"), F, None),
    ("D7", N_("Operators involved in designing or choosing digital tools"), A, (
        N_("Never"),
        N_("Told once tools are chosen"),
        N_("Asked for feedback now and then"),
        N_("Consulted in choosing and testing"),
        N_("Operators co-design digital tools"),
        N_("Operator teams build and improve their own tools with data"),
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
