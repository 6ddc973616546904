"""The gateway: contract messages from the broker into the store, and the HTTP API over it.

`service` is the ingest (`Gateway`, `GatewaySettings`); `api` the HTTP API (`create_app`,
`serve`); `tokens` the API's tokens per tenant and role. `acceptance` (what a message must
pass) and `stats` (the figures behind `/metrics` and `/health`) are internal. Imports only the
`shopfloor` contract; `shopfloor gateway` lives in launcher/cli/gateway.py. See README.md in
this folder.
"""

__all__ = ["api", "service", "tokens"]
