"""The REST ingest broker: HTTPS face of Kafka for gateways that do not speak Kafka.

Public API: `create_app` (the ASGI app), `RestSettings`, `TokenStore`. Run it
with `make rest`; manage tokens with `make token ...`. See docs/rest.md.
"""

from connectors.rest.app import create_app
from connectors.rest.settings import RestSettings
from connectors.rest.tokens import Grant, TokenStore

__all__ = ["Grant", "RestSettings", "TokenStore", "create_app"]
