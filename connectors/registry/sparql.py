"""Read-only SPARQL over the registry: the same documents, seen as RDF.

Each sensor becomes the node `<urn:uuid:{sensor_id}>` with the triples its
JSON-LD document means under the Vigil context (e.g. `sosa:isHostedBy` for
the machine id), so queries use the public vocabularies (SOSA/SSN, schema.org)
and any extra vocabulary a client used. The graph is built with pyld's
`to_rdf` from the expanded document (default graph only) and the frozen loader, so no context is
fetched; it is rebuilt lazily when `Registry.version` moved, and each sensor's
triples are cached until its entry is replaced.

Only SELECT (`query`) and ASK (`ask`) are answered (`results` takes either,
in the W3C JSON results format). Updates, CONSTRUCT and DESCRIBE are refused,
and so are `FROM`/`FROM NAMED` and `SERVICE`, which would make rdflib fetch
data over the network. A query that fails while it runs (a bad regex, an
ORDER BY rdflib cannot compare) is a `SparqlError` too.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Final

from pyld import jsonld
from pyparsing import ParseException
from rdflib import Graph
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.parser import parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue
from rdflib.plugins.sparql.sparql import Query
from rdflib.query import ResultRow
from rdflib.term import BNode, Literal, Node, URIRef

from connectors.registry.documents import PREFIXES
from connectors.registry.store import Entry, Registry
from contracts.jsonld import frozen_document_loader

# Prefixes a query may use without declaring them (those of the Vigil context).
NAMESPACES: Final = {prefix: iri for prefix, iri in PREFIXES.items()}
_FORBIDDEN: Final = {"ServiceGraphPattern": "SERVICE (federated queries)"}


class SparqlError(ValueError):
    """The query is malformed or not allowed; the message says which and why."""


def sensor_iri(entry: Entry) -> str:
    """The RDF node of a sensor: its UUID as a URN."""
    return f"urn:uuid:{entry.sensor_id}"


def query(registry: Registry, sparql: str) -> tuple[list[str], list[tuple[str | None, ...]]]:
    """Answer a SELECT query: the projected variable names and one tuple per solution.

    Values are strings (an IRI, a literal's lexical form or a blank node id);
    None marks an unbound variable.
    """
    variables, rows = _select(registry, _prepare(sparql, "SelectQuery"))
    return variables, [tuple(None if node is None else str(node) for node in row) for row in rows]


def ask(registry: Registry, sparql: str) -> bool:
    """Answer an ASK query."""
    return _ask(registry, _prepare(sparql, "AskQuery"))


def results(registry: Registry, sparql: str) -> dict[str, Any]:
    """Answer a SELECT or an ASK query in the W3C SPARQL 1.1 JSON results format (what SPARQL clients read)."""
    prepared = _prepare(sparql, "SelectQuery", "AskQuery")
    if str(prepared.algebra.name) == "AskQuery":
        return {"head": {}, "boolean": _ask(registry, prepared)}
    variables, rows = _select(registry, prepared)
    bindings = [{v: _term(node) for v, node in zip(variables, row, strict=True) if node is not None} for row in rows]
    return {"head": {"vars": variables}, "results": {"bindings": bindings}}


def _term(node: Node) -> dict[str, str]:
    """One RDF term as the W3C JSON results format writes it: its type, value, and a literal's language or type."""
    if isinstance(node, URIRef):
        return {"type": "uri", "value": str(node)}
    if isinstance(node, BNode):
        return {"type": "bnode", "value": str(node)}
    term = {"type": "literal", "value": str(node)}
    if isinstance(node, Literal) and node.language:
        term["xml:lang"] = node.language
    elif isinstance(node, Literal) and node.datatype is not None:
        term["datatype"] = str(node.datatype)
    return term


def warm_up(registry: Registry) -> None:
    """Build the registry's graph now: the first query would otherwise pay for it (~2 s for 500 sensors)."""
    _graph(registry)


def _select(registry: Registry, prepared: Query) -> tuple[list[str], list[tuple[Node | None, ...]]]:
    graph = _graph(registry)  # outside the try: a failure to build the graph is ours, not the query's
    rows: list[tuple[Node | None, ...]] = []
    try:
        result = graph.query(prepared)
        variables = [str(v) for v in result.vars or []]
        for row in result:  # solutions are computed while iterating: errors come from here too
            assert isinstance(row, ResultRow)
            rows.append(tuple(row))
    except Exception as exc:
        raise _failed(exc) from exc
    return variables, rows


def _ask(registry: Registry, prepared: Query) -> bool:
    graph = _graph(registry)
    try:
        return bool(graph.query(prepared).askAnswer)
    except Exception as exc:
        raise _failed(exc) from exc


def _failed(exc: Exception) -> SparqlError:
    # rdflib evaluates the client's expressions with plain Python: a bad regex is re.error, an ORDER BY over
    # values it cannot compare a TypeError, and so on. The graph only holds validated documents, so an
    # exception while evaluating is the query's doing.
    return SparqlError(f"the query failed while running ({type(exc).__name__}): {exc}")


def _prepare(sparql: str, *forms: str) -> Query:
    try:
        prepared = prepareQuery(sparql, initNs=NAMESPACES)
    except ParseException as exc:
        if _is_update(sparql):
            raise SparqlError("SPARQL Update is not allowed: the registry is read-only over SPARQL") from exc
        raise SparqlError(f"SPARQL syntax error: {exc}") from exc
    except Exception as exc:  # rdflib raises bare Exceptions for e.g. unknown prefixes
        raise SparqlError(f"invalid SPARQL: {exc}") from exc
    name = str(prepared.algebra.name)
    if name not in forms:
        hint = {"SelectQuery": "use query()", "AskQuery": "use ask()"}.get(name, "only SELECT and ASK are answered")
        wanted = " or ".join(form.removesuffix("Query").upper() for form in forms)
        raise SparqlError(f"expected a {wanted} query, got {name}; {hint}")
    if prepared.algebra.get("datasetClause"):
        raise SparqlError("FROM / FROM NAMED is not allowed: queries run over the registry's graph only")
    forbidden = _walk(prepared.algebra)
    if forbidden:
        raise SparqlError(f"{_FORBIDDEN[forbidden[0]]} is not allowed: queries run over the registry's graph only")
    return prepared


def _is_update(sparql: str) -> bool:
    try:
        parseUpdate(sparql)
    except ParseException:  # not an update either; the caller reports the query syntax error
        return False
    return True


def _walk(node: Any) -> list[str]:
    """Names of forbidden algebra operators anywhere in a (nested) query."""
    found: list[str] = []
    if isinstance(node, CompValue):
        if node.name in _FORBIDDEN:
            found.append(node.name)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list | tuple):
        for item in node:
            found.extend(_walk(item))
    return found


class _Index:
    """The graph of one registry at one version, plus per-sensor triples to rebuild from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = -1
        self.graph = Graph()
        self.triples: dict[str, tuple[Entry, list[tuple[Node, Node, Node]]]] = {}

    def refresh(self, registry: Registry) -> Graph:
        with self.lock:
            if self.version == registry.version:
                return self.graph
            version, entries = registry.version, registry.entries()
            cache: dict[str, tuple[Entry, list[tuple[Node, Node, Node]]]] = {}
            graph = Graph()
            for prefix, iri in NAMESPACES.items():
                graph.bind(prefix, iri)
            for entry in entries:
                key = sensor_iri(entry)
                cached = self.triples.get(key)
                triples = cached[1] if cached and cached[0] is entry else _triples(entry)
                cache[key] = (entry, triples)
                for triple in triples:
                    graph.add(triple)
            self.graph, self.triples, self.version = graph, cache, version
            return graph


_INDEXES: weakref.WeakKeyDictionary[Registry, _Index] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def _graph(registry: Registry) -> Graph:
    with _INDEXES_LOCK:
        index = _INDEXES.setdefault(registry, _Index())
    return index.refresh(registry)


def _triples(entry: Entry) -> list[tuple[Node, Node, Node]]:
    """The default-graph triples of one sensor's document (blank nodes are fresh per sensor)."""
    document = {**entry.document(), "@id": sensor_iri(entry)}
    options = {"documentLoader": frozen_document_loader}
    dataset = jsonld.to_rdf(jsonld.expand(document, options), options)
    # Named graphs (graph objects inside extras) are not part of the sensor's own description.
    ntriples: str = jsonld.JsonLdProcessor.to_nquads({"@default": dataset.get("@default", [])})
    graph = Graph()
    graph.parse(data=ntriples, format="nt")
    return list(graph)
