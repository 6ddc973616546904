"""Analytics: OEE, energy and anomalies computed from the store and written back to it.

`oee` is the ISO 22400-2 core in plain Python (the dashboard and readiness import it);
`history` reads a machine's history from the store as the core's inputs (NumPy, no Numba);
`energy`, `anomaly` (a package, one module per detector) and `kernels` are the
Numba-compiled computations; `service` is the service that runs them every cycle; `kpi_files`
reads the machine exports of `shopfloor kpi`. Importing the package imports none of them, so
Numba loads only where a module that needs it is imported. Imports only the `shopfloor`
contract. See README.md in this folder.
"""

__all__ = [
    "anomaly",
    "energy",
    "history",
    "kernels",
    "kpi_files",
    "oee",
    "service",
]
