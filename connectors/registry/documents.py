"""Accept a sensor description in any JSON-LD form and render it back in Vigil's canonical form.

Clients PUT JSON-LD: with the Vigil `@context`, with their own context, or
fully expanded, and often with properties from other vocabularies
(`schema:manufacturer`). Comparing or storing those forms as they come would
make equal descriptions look different, so `accept` expands the document
(offline, with the frozen loader: a context is never fetched) and compacts it
to `CONTEXT_V1`. The Vigil part is then validated by the contract model; the
other properties ("extras") are returned separately and kept verbatim in
their compacted form, so `render` can write the whole document back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from pydantic import JsonValue, ValidationError
from pyld import jsonld

from contracts.deadletter import ReasonCode
from contracts.errors import ContractError
from contracts.jsonld import CONTEXT_V1, UnknownContextError, context_document, frozen_document_loader
from contracts.metadata import SensorDescription

Extras = dict[str, JsonValue]

_CONTEXT: Final[dict[str, Any]] = context_document(CONTEXT_V1)["@context"]
# Prefix -> namespace IRI ("sosa" -> "http://www.w3.org/ns/sosa/"), as declared by the Vigil context.
PREFIXES: Final[dict[str, str]] = {
    k: v for k, v in _CONTEXT.items() if isinstance(v, str) and not k.startswith("@") and v.endswith(("/", "#"))
}
_VIGIL_NS: Final = PREFIXES["vigil"]


def expand_iri(term: str) -> str:
    """`sosa:isHostedBy` -> `http://www.w3.org/ns/sosa/isHostedBy`; other strings unchanged."""
    prefix, _, suffix = term.partition(":")
    return PREFIXES[prefix] + suffix if prefix in PREFIXES and not suffix.startswith("//") else term


# Vigil term -> property IRI, and property IRI -> datatype IRI of its typed literals.
TERM_IRIS: Final[dict[str, str]] = {
    k: expand_iri(v["@id"]) for k, v in _CONTEXT.items() if isinstance(v, dict) and "@id" in v
}
_DATATYPES: Final[dict[str, str]] = {
    expand_iri(v["@id"]): expand_iri(v["@type"])
    for v in _CONTEXT.values()
    if isinstance(v, dict) and "@id" in v and not str(v.get("@type", "@")).startswith("@")
}
# Keys the contract model owns at the top level; everything else there is an extra.
_MODEL_KEYS: Final = frozenset(
    (f.alias or name) for name, f in SensorDescription.model_fields.items() if name != "extensions"
)
# IRIs of those keys: an extra under one of them is a Vigil property whose value did not fit the term.
_MODEL_IRIS: Final = {TERM_IRIS[k]: k for k in _MODEL_KEYS if k in TERM_IRIS}
# Codes whose meaning is more specific than `schema_violation`.
_REASONS: Final = {"finite_number": ReasonCode.NON_FINITE_VALUE, "unknown_context": ReasonCode.UNKNOWN_CONTEXT}
MAX_DEPTH: Final = 64
"""Deepest nesting of objects and arrays a description may have (the example has 3 compacted, 6 expanded).
pyld, deepcopy and the SPARQL graph recurse once or more per level; this bound, far below Python's recursion
limit, keeps a deep document a DocumentError instead of a RecursionError somewhere downstream."""


class DocumentError(ContractError):
    """A sensor description is not acceptable; `reason`, `field` (dotted path) and `detail` say why."""


def accept(document: Mapping[str, Any] | list[Any]) -> tuple[SensorDescription, Extras]:
    """Canonicalise and validate a JSON-LD sensor description.

    Returns the validated description (whose `extensions` hold the extras, so
    `to_wire()` is complete) and the extras themselves: every top-level
    property from another vocabulary, compacted against the Vigil context
    (a prefix only the client declared becomes the full IRI). An expanded
    document may come as its top-level array.
    Raises `DocumentError` on any contract violation, never fetching a context.
    """
    if not isinstance(document, Mapping | list):
        raise DocumentError(ReasonCode.MALFORMED_JSON, f"expected a JSON object, got {type(document).__name__}")
    compacted = canonical(document)
    vigil = {k: v for k, v in compacted.items() if k in _MODEL_KEYS}
    extras: Extras = {k: v for k, v in compacted.items() if k not in _MODEL_KEYS}
    for key in extras:
        _check_extra(key)
    try:
        description = SensorDescription.model_validate({**vigil, **extras})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise DocumentError(_REASONS.get(first["type"], ReasonCode.SCHEMA_VIOLATION), first["msg"], field) from exc
    return description, copy.deepcopy(extras)


def render(description: SensorDescription, extras: Mapping[str, JsonValue] | None = None) -> dict[str, Any]:
    """The compacted JSON-LD document (Vigil `@context`) of a description and its extras.

    Extras are merged over the description's own `extensions`. A description
    built with a wider context (e.g. `[CONTEXT_V1, {"ex": ...}]`) is
    canonicalised first, so the output always names `CONTEXT_V1` alone.
    """
    document: dict[str, Any] = description.model_dump(mode="json", by_alias=True, exclude_none=True)
    document.update(copy.deepcopy(dict(extras or {})))
    if document.get("context", {}).get("machine_label") == {}:
        del document["context"]["machine_label"]  # an empty language map compacts away; keep the form canonical
    if document["@context"] != CONTEXT_V1:
        return render(*accept(document))
    return document


def canonical(document: Mapping[str, Any] | list[Any]) -> dict[str, Any]:
    """Expand `document` offline and compact it to `CONTEXT_V1` (no validation of the Vigil fields)."""
    _check_depth(document)
    dropped: list[str] = []
    options = {"documentLoader": frozen_document_loader}
    try:
        expanded: list[dict[str, Any]] = jsonld.expand(
            copy.deepcopy(document if isinstance(document, list) else dict(document)),
            options,
            on_property_dropped=lambda key: dropped.append(str(key)),
        )
    except jsonld.JsonLdError as exc:
        raise _jsonld_error(exc) from exc
    except RecursionError as exc:  # not expected below MAX_DEPTH; a refusal all the same, never a crash
        raise DocumentError(ReasonCode.SCHEMA_VIOLATION, "the document nests too deeply to process") from exc
    if dropped:
        raise DocumentError(
            ReasonCode.SCHEMA_VIOLATION,
            f"unknown property {dropped[0]!r}: not a Vigil term and not an IRI; "
            "name properties from other vocabularies by a declared prefix, e.g. 'ex:name'",
            dropped[0],
        )
    if len(expanded) != 1:
        raise DocumentError(ReasonCode.SCHEMA_VIOLATION, f"expected one sensor node, found {len(expanded)}")
    _coerce(expanded)
    try:
        compacted: dict[str, Any] = jsonld.compact(expanded, CONTEXT_V1, options)
    except jsonld.JsonLdError as exc:
        raise _jsonld_error(exc) from exc
    return compacted


def _check_depth(document: Mapping[str, Any] | list[Any]) -> None:
    """DocumentError naming the top-level property under which objects and arrays nest deeper than MAX_DEPTH."""
    # Iterative on purpose: a recursive walk would itself fail on the documents it is meant to refuse.
    stack: list[tuple[Any, int, str | None]] = [(document, 1, None)]
    while stack:
        node, level, top = stack.pop()
        children = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            if not isinstance(child, Mapping | list):
                continue
            under = top if top is not None else str(key)
            if level + 1 > MAX_DEPTH:
                raise DocumentError(
                    ReasonCode.SCHEMA_VIOLATION,
                    f"{under!r} nests objects and arrays deeper than the {MAX_DEPTH} levels a description may have",
                    under,
                )
            stack.append((child, level + 1, under))


def _coerce(node: Any) -> None:
    """Give untyped literals of Vigil properties the datatype the Vigil term declares.

    A client context (or an expanded document) may say `ssn-system:Frequency: 10`
    without `xsd:double`; without this the value would not compact to the Vigil
    term and would look like a foreign property. Language-tagged values are left alone.
    """
    if isinstance(node, list):
        for item in node:
            _coerce(item)
        return
    if not isinstance(node, dict):
        return
    for key, values in node.items():
        datatype = _DATATYPES.get(key)
        for value in values if isinstance(values, list) else [values]:
            if (
                datatype
                and isinstance(value, dict)
                and isinstance(value.get("@value"), str | int | float | bool)
                and not {"@type", "@language"} & value.keys()
            ):
                value["@type"] = datatype
            _coerce(value)


def _check_extra(key: str) -> None:
    iri = expand_iri(key)
    if iri in _MODEL_IRIS:
        raise DocumentError(
            ReasonCode.SCHEMA_VIOLATION,
            f"{key!r} is Vigil's {_MODEL_IRIS[iri]!r} but its value does not fit the term (wrong datatype or shape)",
            _MODEL_IRIS[iri],
        )
    if iri.startswith(_VIGIL_NS):
        raise DocumentError(ReasonCode.SCHEMA_VIOLATION, f"{key!r} is not a term of the Vigil vocabulary", key)
    if key.startswith("@"):
        raise DocumentError(
            ReasonCode.SCHEMA_VIOLATION, f"{key!r} is not allowed here; a sensor is identified by sensor_id", key
        )


def _jsonld_error(exc: jsonld.JsonLdError) -> DocumentError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, UnknownContextError):
            return DocumentError(ReasonCode.UNKNOWN_CONTEXT, str(cause), "@context")
        cause = cause.__cause__ or cause.__context__
    code = exc.code or exc.type
    field = "@context" if "context" in code or "term" in code else None  # term definitions live in contexts
    return DocumentError(ReasonCode.SCHEMA_VIOLATION, f"invalid JSON-LD ({code}): {exc.args[0]}", field)
