"""The Vigil JSON-LD contexts and a frozen document loader that never touches the network.

The data plane only checks that a package names a known `@context` (cheap);
full JSON-LD processing (pyld, ~100x the cost of validation) is for the
metadata plane and the contract tests.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

CONTEXT_V1: Final = "https://w3id.org/vigil/contexts/v1.jsonld"

# URL -> file shipped in contracts/jsonld. Add a version here, never edit a published one.
KNOWN_CONTEXTS: Final[dict[str, str]] = {CONTEXT_V1: "vigil-v1.jsonld"}

SOSA: Final = "http://www.w3.org/ns/sosa/"
SSN: Final = "http://www.w3.org/ns/ssn/"
SSN_SYSTEM: Final = "http://www.w3.org/ns/ssn/systems/"
VIGIL: Final = "https://w3id.org/vigil/v1#"


class UnknownContextError(LookupError):
    """A document names a JSON-LD context Vigil does not ship."""


@cache
def context_document(url: str) -> dict[str, Any]:
    """The parsed context document shipped for `url`."""
    try:
        name = KNOWN_CONTEXTS[url]
    except KeyError:
        raise UnknownContextError(f"unknown JSON-LD context {url!r}; known: {sorted(KNOWN_CONTEXTS)}") from None
    text = resources.files("contracts").joinpath("jsonld", name).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def frozen_document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pyld document loader that serves the shipped contexts and refuses every other URL."""
    return {
        "contextUrl": None,
        "documentUrl": url,
        "document": context_document(url),
        "contentType": "application/ld+json",
    }


def expand(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Expand a compact Vigil JSON-LD document with pyld, offline."""
    from pyld import jsonld

    expanded: list[dict[str, Any]] = jsonld.expand(document, {"documentLoader": frozen_document_loader})
    return expanded


def compact(document: dict[str, Any] | list[dict[str, Any]], context: str = CONTEXT_V1) -> dict[str, Any]:
    """Compact an expanded (or foreign) JSON-LD document to a Vigil context, offline."""
    from pyld import jsonld

    compacted: dict[str, Any] = jsonld.compact(document, context, {"documentLoader": frozen_document_loader})
    return compacted
