"""Numpy-vectorised Avro encoding of numeric array fields, byte-identical to fastavro.

fastavro writes array items one Python object at a time (~0.28 µs per long), which dominates
the encoding of a 1000-sample `CleanReadingBatch`. Here the arrays are encoded with numpy and the
other fields are still written by fastavro: Avro gives a record no framing (its bytes are its
fields' bytes, in order), so a record can be written piece by piece.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from itertools import groupby
from typing import Any, Final, cast

import fastavro
import numpy as np
from numpy.typing import NDArray

Encoder = Callable[[NDArray[Any]], bytes]

# A varint of k + 1 groups encodes codes from 2**(7k) up.
_LENGTH_THRESHOLDS: Final = np.uint64(1) << np.arange(7, 64, 7, dtype=np.uint64)
# A parallel bit deposit of a code's low eight 7-bit groups into the eight bytes of a uint64, in
# halving steps (28-bit halves into 32-bit lanes, 14 into 16, 7 into 8); a step only matters from
# the given varint width up: (width, bits kept in place, bits moved, shift).
_SPREAD: Final = (
    (5, np.uint64(0x0000_0000_0FFF_FFFF), np.uint64(0x00FF_FFFF_F000_0000), np.uint64(4)),
    (3, np.uint64(0x0000_3FFF_0000_3FFF), np.uint64(0x0FFF_C000_0FFF_C000), np.uint64(2)),
    (2, np.uint64(0x007F_007F_007F_007F), np.uint64(0x3F80_3F80_3F80_3F80), np.uint64(1)),
)
# By varint length: the continuation bits of its first (up to) eight bytes.
_CONTINUATION: Final = np.array([(1 << 8 * min(max(n - 1, 0), 8)) // 255 * 0x80 for n in range(11)], np.uint64)
_INT32: Final = np.iinfo(np.int32)
_INT64_MAX: Final = np.iinfo(np.int64).max
_NAMED_KINDS: Final = frozenset({"record", "error", "enum", "fixed"})


def _zigzag(values: NDArray[np.int64]) -> NDArray[np.uint64]:
    # (n << 1) ^ (n >> 63). Shifting the unsigned view wraps where the signed shift would overflow;
    # the arithmetic shift of the signed values is the all-ones mask of the negative ones.
    shifted: NDArray[np.uint64] = values.view(np.uint64) << np.uint64(1)
    return shifted ^ (values >> np.int64(63)).view(np.uint64)


def _varint_width(code: int) -> int:
    return max(1, (code.bit_length() + 6) // 7)


def _varints(codes: NDArray[np.uint64]) -> bytes:
    # Each code's varint laid out in a row of an (n, width) byte matrix. When all codes are as long
    # (timestamps, small enum indexes) the matrix is the output, else a mask keeps each row's bytes.
    count, width = codes.size, _varint_width(int(codes.max()))
    if width == 1:  # e.g. enum indexes: each code is its own byte
        return codes.astype(np.uint8).tobytes()
    uniform = _varint_width(int(codes.min())) == width
    lengths = np.searchsorted(_LENGTH_THRESHOLDS, codes, side="right") + 1 if width > 8 or not uniform else None
    spread = codes & np.uint64((1 << 56) - 1)
    for from_width, keep, move, shift in _SPREAD:
        if width >= from_width:
            spread = (spread & keep) | ((spread & move) << shift)
    spread |= _CONTINUATION[width if lengths is None else lengths]
    groups = spread.astype("<u8", copy=False).view(np.uint8).reshape(count, 8)
    if lengths is not None and width > 8:  # codes from 2**56 have a ninth group, and a tenth from 2**63
        high = (codes >> np.uint64(56)).astype(np.uint16)
        tail = (high & 0x7F) | (high >> 7 << 8) | ((lengths == 10).astype(np.uint16) << 7)
        groups = np.concatenate([groups, tail.astype("<u2").view(np.uint8).reshape(count, 2)], axis=1)
    groups = groups[:, :width]
    if lengths is None or uniform:
        return groups.tobytes()
    return groups[np.arange(width) < lengths[:, None]].tobytes()


def _count(count: int) -> bytes:
    # One non-negative varint per array: not worth a trip through numpy.
    code, out = count << 1, bytearray()
    while code > 0x7F:
        out.append(code & 0x7F | 0x80)
        code >>= 7
    out.append(code)
    return bytes(out)


def _block(count: int, items: bytes) -> bytes:
    # Like fastavro: a non-empty array is one block (positive count, no byte size) and then the 0
    # that ends the array; an empty array is that 0 alone.
    return _count(count) + items + b"\x00" if count else b"\x00"


def _integers(values: NDArray[Any], low: int, high: int) -> NDArray[np.int64]:
    if values.dtype.kind not in "iu":
        raise TypeError(f"needs an integer array, got dtype {values.dtype}")
    bounds = np.iinfo(values.dtype)  # only a dtype wider than the range needs a scan (never int64 for a long)
    if values.size and (bounds.min < low or bounds.max > high):
        smallest, largest = values.min(), values.max()
        if smallest < low or largest > high:
            raise ValueError(f"values must lie in [{low}, {high}], got [{smallest}, {largest}]")
    return np.ascontiguousarray(values.astype(np.int64, copy=False))


def _zigzag_array(values: NDArray[np.int64]) -> bytes:
    return _block(values.size, _varints(_zigzag(values)) if values.size else b"")


def encode_long_array(values: NDArray[Any]) -> bytes:
    """Avro `{"type": "array", "items": "long"}` of an integer array."""
    return _zigzag_array(_integers(values, -_INT64_MAX - 1, _INT64_MAX))


def encode_int_array(values: NDArray[Any]) -> bytes:
    """Avro `{"type": "array", "items": "int"}`; unlike fastavro, a value beyond int32 is an error, not a long."""
    return _zigzag_array(_integers(values, int(_INT32.min), int(_INT32.max)))


def encode_enum_array(indexes: NDArray[Any], symbol_count: int) -> bytes:
    """Avro array of an enum, from the symbols' indexes (`symbols.index(symbol)`)."""
    return _zigzag_array(_integers(indexes, 0, symbol_count - 1))


def _floats(values: NDArray[Any], dtype: str) -> bytes:
    if values.dtype.kind != "f":
        raise TypeError(f"needs a floating-point array, got dtype {values.dtype}")
    # Too large for float32 becomes ±inf, as in fastavro's C cast; numpy would only warn about it.
    with np.errstate(over="ignore"):
        return _block(values.size, values.astype(dtype).tobytes())


def encode_double_array(values: NDArray[Any]) -> bytes:
    """Avro `{"type": "array", "items": "double"}`: little-endian IEEE 754 binary64 items."""
    return _floats(values, "<f8")


def encode_float_array(values: NDArray[Any]) -> bytes:
    """Avro `{"type": "array", "items": "float"}`: little-endian IEEE 754 binary32 items."""
    return _floats(values, "<f4")


_PRIMITIVE_ENCODERS: Final[dict[str, Encoder]] = {
    "long": encode_long_array,
    "int": encode_int_array,
    "double": encode_double_array,
    "float": encode_float_array,
}


def _column_encoder(field: Mapping[str, Any], named: Mapping[str, Any]) -> Encoder:
    """The encoder of a (fastavro-parsed) array field's items; named references resolved via `named`."""
    schema, name = field["type"], field["name"]
    if not (isinstance(schema, dict) and schema.get("type") == "array"):
        raise ValueError(f"field {name!r} is not an array and cannot be a column")
    items = schema["items"]
    items = named.get(items, {"type": items}) if isinstance(items, str) else items
    kind = items["type"] if isinstance(items, dict) and "logicalType" not in items else None
    if kind == "enum":
        count = len(items["symbols"])
        return lambda indexes: encode_enum_array(indexes, count)
    if kind in _PRIMITIVE_ENCODERS:
        return _PRIMITIVE_ENCODERS[kind]
    raise ValueError(f"field {name!r}: items {items!r} are not long, int, double, float or an enum")


def _defined_names(schema: Any) -> set[str]:
    """Full names of the named types a fastavro-parsed schema defines (parsing qualifies them)."""
    if isinstance(schema, list):  # a union
        return set().union(*map(_defined_names, schema))
    if not isinstance(schema, dict):
        return set()  # a primitive or a reference
    names = {schema["name"]} if schema.get("type") in _NAMED_KINDS else set()
    inner = [field["type"] for field in schema.get("fields", ())] + [
        schema[k] for k in ("items", "values") if k in schema
    ]
    return names.union(*map(_defined_names, inner))


class ColumnarRecordWriter:
    """Writes one record schema with some of its numeric array fields given as numpy columns.

    The field list is split into runs: each run of ordinary fields is written by fastavro with a
    sub-record of exactly those fields, each column by the vectorised encoders above.
    """

    def __init__(self, schema: Mapping[str, Any], columns: Iterable[str]) -> None:
        named: dict[str, Any] = {}
        parsed = cast(dict[str, Any], fastavro.parse_schema(dict(schema), named_schemas=named))
        raw_fields: list[dict[str, Any]] = schema["fields"]
        parsed_fields: list[dict[str, Any]] = parsed["fields"]
        self._column_names = frozenset(columns)
        all_names = {field["name"] for field in raw_fields}
        if unknown := self._column_names - all_names:
            raise ValueError(f"not fields of {parsed['name']}: {sorted(unknown)}")
        self._field_names = frozenset(all_names - self._column_names)
        self._parts: list[tuple[str, Encoder] | dict[str, Any]] = []
        for is_column, group in groupby(range(len(raw_fields)), lambda i: raw_fields[i]["name"] in self._column_names):
            run = list(group)
            if is_column:
                self._parts += [(parsed_fields[i]["name"], _column_encoder(parsed_fields[i], named)) for i in run]
                continue
            # The sub-record keeps the record's namespace (so the raw fields' short names resolve as
            # before) and sees the named types defined elsewhere (other runs, the columns' items) via
            # `named_schemas`; those the run defines itself are left out for fastavro to parse afresh.
            defined = set().union(*(_defined_names(parsed_fields[i]["type"]) for i in run))
            visible = {name: value for name, value in named.items() if name not in defined}
            sub_record = {
                "type": "record",
                "name": f"{parsed['name']}__run{run[0]}",
                "fields": [raw_fields[i] for i in run],
            }
            self._parts.append(cast(dict[str, Any], fastavro.parse_schema(sub_record, named_schemas=visible)))

    def encode(self, fields: Mapping[str, Any], columns: Mapping[str, NDArray[Any]]) -> bytes:
        """Schemaless Avro bytes of the record: `fields` as fastavro takes them, `columns` as 1-D arrays."""
        _check_names("fields", fields, self._field_names)
        _check_names("columns", columns, self._column_names)
        datum, buffer = dict(fields), io.BytesIO()
        for part in self._parts:
            if isinstance(part, dict):
                fastavro.schemaless_writer(buffer, part, datum)
                continue
            name, encoder = part
            values = columns[name]
            if not isinstance(values, np.ndarray):
                raise TypeError(f"column {name!r} must be a numpy array, got {type(values).__name__}")
            if values.ndim != 1:
                raise ValueError(f"column {name!r} must be 1-D, got shape {values.shape}")
            try:
                buffer.write(encoder(values))
            except (TypeError, ValueError) as error:
                raise type(error)(f"column {name!r}: {error}") from error
        return buffer.getvalue()


def _check_names(what: str, given: Mapping[str, Any], expected: frozenset[str]) -> None:
    missing, extra = sorted(expected - given.keys()), sorted(given.keys() - expected)
    if missing or extra:
        raise ValueError(f"{what}: missing {missing}, unexpected {extra}")
