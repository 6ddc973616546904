"""The Streamlit dashboard: shop floor, demo controls, edge devices, OEE, anomalies, energy and
Lean 4.0 readiness.

`app.py` is the Streamlit script that `shopfloor dashboard` runs; it is never imported (it
renders on import). Each page is a module with plain functions that read and shape what it
shows, tested without a browser: `shop_floor` (drawn by `cards`), `controls`, `edge_devices`,
`oee`, `anomalies`, `energy`, `lean_readiness`; `labels` names signals, units, states, KPIs,
times and money for people on every page; `kpis` reads the analytics service's KPIs and shift
reports, `store_errors` turns a store failure into one error on the page. Imports the
`shopfloor` contract, analytics' OEE core (`analytics.oee`) and anomaly levels
(`analytics.levels`) and `readiness`, never Numba. See README.md in this folder.
"""

__all__ = [
    "anomalies",
    "cards",
    "controls",
    "edge_devices",
    "energy",
    "kpis",
    "labels",
    "lean_readiness",
    "oee",
    "shop_floor",
    "store_errors",
]
