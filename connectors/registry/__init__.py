"""The metadata registry core: accept, store, search and query sensor descriptions.

Pure library, no servers: the REST service wraps it. A client PUTs a JSON-LD
sensor description in any equivalent form; `accept` canonicalises it to the
Vigil context and splits it into the validated contract (`SensorDescription`)
and the properties from other vocabularies (`extras`), which are kept and
written back by `render`. `Registry` holds the latest description per sensor,
`Registry.search` answers the catalogue search box and `sparql.query`,
`sparql.ask` and `sparql.results` answer SELECT and ASK queries over the same
documents as RDF.
"""

from connectors.registry.documents import DocumentError, accept, canonical, render
from connectors.registry.sparql import SparqlError, ask, query, results
from connectors.registry.store import Entry, Registry, SearchResult

__all__ = [
    "DocumentError",
    "Entry",
    "Registry",
    "SearchResult",
    "SparqlError",
    "accept",
    "ask",
    "canonical",
    "query",
    "render",
    "results",
]
