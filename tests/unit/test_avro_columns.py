"""The vectorised Avro array encoders and `encode_columns` write exactly the bytes fastavro writes."""

from __future__ import annotations

import io
import math
import struct
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import fastavro
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from contracts import CleanReadingBatch, ClockSource, QualityCode, Quantity
from contracts._avro_columns import (
    ColumnarRecordWriter,
    encode_double_array,
    encode_enum_array,
    encode_float_array,
    encode_int_array,
    encode_long_array,
)
from contracts.avro import decode, encode, encode_columns, raw_schema

pytestmark = pytest.mark.unit

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SYMBOLS = ["ok", "out_of_range", "non_finite", "spike", "stuck"]
COLUMNS = ("t_raw_us", "t_us", "v", "quality")
# Values at the varint length boundaries (2**(7k) and around), the int64 ends and the zigzag pivots.
LONG_EDGES = sorted(
    {0, 1, -1, 63, 64, -64, -65, INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1}
    | {sign * 2 ** (7 * k - 1) + delta for k in range(1, 10) for sign in (1, -1) for delta in (-1, 0, 1)}
)


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), datum)
    return buffer.getvalue()


def longs(low: int = INT64_MIN, high: int = INT64_MAX) -> st.SearchStrategy[list[int]]:
    edges = [value for value in LONG_EDGES if low <= value <= high]
    return st.lists(st.one_of(st.sampled_from(edges), st.integers(low, high)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(longs())
@example([])
@example([INT64_MIN])
@example([INT64_MAX])
@example(LONG_EDGES)
def test_long_array_matches_fastavro(values: list[int]) -> None:
    expected = fastavro_bytes({"type": "array", "items": "long"}, values)
    assert encode_long_array(np.array(values, dtype=np.int64)) == expected


@settings(max_examples=200, deadline=None)
@given(longs(INT32_MIN, INT32_MAX))
@example([])
@example([INT32_MIN, INT32_MAX, 0, -1, 1])
def test_int_array_matches_fastavro(values: list[int]) -> None:
    expected = fastavro_bytes({"type": "array", "items": "int"}, values)
    assert encode_int_array(np.array(values, dtype=np.int64)) == expected
    assert encode_int_array(np.array(values, dtype=np.int32)) == expected


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.uint64])
def test_long_array_takes_any_integer_dtype(dtype: type[np.integer[Any]]) -> None:
    info = np.iinfo(dtype)
    values = np.array([info.min, 0, 1, min(int(info.max), INT64_MAX)], dtype=dtype)
    expected = fastavro_bytes({"type": "array", "items": "long"}, [int(value) for value in values])
    assert encode_long_array(values) == expected


def test_strided_and_big_endian_arrays_encode_like_their_values() -> None:
    values = np.arange(-50, 50, dtype=np.int64) * 1_000_003
    expected = fastavro_bytes({"type": "array", "items": "long"}, values[::3].tolist())
    assert encode_long_array(values[::3]) == expected
    assert encode_long_array(values[::3].astype(">i8")) == expected
    doubles = values.astype(np.float64) / 7
    assert encode_double_array(doubles.astype(">f8")) == encode_double_array(doubles)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf]), st.floats())))
@example([])
@example([5e-324, 1.7976931348623157e308])
def test_double_array_matches_fastavro(values: list[float]) -> None:
    expected = fastavro_bytes({"type": "array", "items": "double"}, values)
    assert encode_double_array(np.array(values, dtype=np.float64)) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e300, -1e-300]), st.floats())))
def test_float_array_matches_fastavro(values: list[float]) -> None:
    expected = fastavro_bytes({"type": "array", "items": "float"}, values)
    assert encode_float_array(np.array(values, dtype=np.float64)) == expected


def test_nan_payloads_are_written_bit_for_bit() -> None:
    bits = [0x7FF8000000000001, 0xFFF8DEADBEEF0000, 0x7FF0000000000001]
    values = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits]
    expected = fastavro_bytes({"type": "array", "items": "double"}, values)
    assert encode_double_array(np.array(bits, dtype=np.uint64).view(np.float64)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(SYMBOLS) - 1), max_size=200))
def test_enum_array_matches_fastavro(indexes: list[int]) -> None:
    schema = {"type": "array", "items": {"type": "enum", "name": "QualityCode", "symbols": SYMBOLS}}
    expected = fastavro_bytes(schema, [SYMBOLS[i] for i in indexes])
    assert encode_enum_array(np.array(indexes, dtype=np.int64), len(SYMBOLS)) == expected
    assert encode_enum_array(np.array(indexes, dtype=np.uint8), len(SYMBOLS)) == expected


def test_an_enum_of_many_symbols_has_multi_byte_indexes() -> None:
    symbols = [f"s{i}" for i in range(300)]
    indexes = [0, 63, 64, 127, 128, 299]
    expected = fastavro_bytes(
        {"type": "array", "items": {"type": "enum", "name": "E", "symbols": symbols}}, [symbols[i] for i in indexes]
    )
    assert encode_enum_array(np.array(indexes), len(symbols)) == expected


# --- CleanReadingBatch -------------------------------------------------------------------------


def batch(
    samples: int, seed: int = 0, **overrides: Any
) -> tuple[CleanReadingBatch, dict[str, Any], dict[str, NDArray[Any]]]:
    """A realistic batch, the non-column fields as `encode_columns` takes them, and its columns."""
    rng = np.random.default_rng(seed)
    t_raw = 1_795_420_800_000_000 + np.cumsum(rng.integers(900, 1100, samples), dtype=np.int64)
    columns: dict[str, NDArray[Any]] = {
        "t_raw_us": t_raw,
        "t_us": t_raw - 12_500,
        "v": rng.normal(20.0, 3.0, samples),
        "quality": rng.integers(0, len(SYMBOLS), samples),
    }
    received = datetime(2026, 11, 23, 8, 0, 1, 31_000, tzinfo=UTC)
    values: dict[str, Any] = dict(
        package_id=uuid4(),
        gateway_id="gw-plant-a-01",
        sensor_id=uuid4(),
        asset_id="press-01",
        site="plant-a",
        location_on_machine="main bearing, drive side",
        quantity=Quantity.ACCELERATION,
        unit="m/s2",
        clock_source=ClockSource.ESTIMATED,
        clock_offset_ms=-12.5,
        t_raw_us=columns["t_raw_us"].tolist(),
        t_us=columns["t_us"].tolist(),
        v=columns["v"].tolist(),
        quality=[QualityCode(SYMBOLS[i]) for i in columns["quality"]],
        dropped={"spike": 3, "non_finite": 1},
        features={"rms": 1.25, "kurtosis": -0.5},
        claim_uri="s3://vigil-claims/packages/0b9e7c4e.lz4",
        missing_samples=7,
        source_topic="edge.packages.v1",
        source_partition=2,
        source_offset=4712,
        received_at=received,
        processed_at=received + timedelta(milliseconds=14),
    )
    model = CleanReadingBatch(**(values | overrides))
    fields = {name: value for name, value in model.model_dump(mode="python").items() if name not in COLUMNS}
    return model, fields, columns


@pytest.mark.parametrize(
    ("samples", "overrides"),
    [
        (1000, {}),
        (1000, {"claim_uri": None, "dropped": {}, "features": {}}),
        (1, {"clock_source": ClockSource.NONE, "clock_offset_ms": 0.0}),
        (0, {"claim_uri": None}),
        (0, {}),
    ],
    ids=["1000-samples", "1000-no-claim-empty-maps", "one-sample", "empty-no-claim", "empty"],
)
def test_encode_columns_is_byte_identical_to_encode(samples: int, overrides: dict[str, Any]) -> None:
    model, fields, columns = batch(samples, **overrides)
    payload = encode_columns(CleanReadingBatch, fields, columns)
    assert payload == encode(model)
    assert decode(CleanReadingBatch, payload) == model


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**32), st.booleans())
def test_encode_columns_matches_encode_for_any_batch(samples: int, seed: int, claim: bool) -> None:
    model, fields, columns = batch(samples, seed, claim_uri="s3://c/x" if claim else None)
    assert encode_columns(CleanReadingBatch, fields, columns) == encode(model)


def test_enum_symbol_order_in_the_schema_is_the_quality_code_order() -> None:
    # The test batches (and callers) index QualityCode symbols by their position in the schema.
    quality = next(f for f in raw_schema(CleanReadingBatch)["fields"] if f["name"] == "quality")
    assert quality["type"]["items"]["symbols"] == SYMBOLS == [code.value for code in QualityCode]


# --- named types across runs, columns at either end ---------------------------------------------

CROSS_RUN_SCHEMA = {
    "type": "record",
    "name": "Cross",
    "namespace": "test.v1",
    "fields": [
        {"name": "head", "type": {"type": "array", "items": "int"}},
        {"name": "mode", "type": {"type": "enum", "name": "Mode", "symbols": ["a", "b", "c"]}},
        {"name": "modes", "type": {"type": "array", "items": "Mode"}},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["low", "high"]}},
        {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [{"name": "m", "type": "Mode"}]}},
        {"name": "widths", "type": {"type": "array", "items": "float"}},
        {"name": "again", "type": ["null", "Inner", "Level"]},
        {"name": "tail", "type": {"type": "array", "items": "double"}},
    ],
}


def test_named_types_resolve_across_runs_and_columns() -> None:
    columns = ["head", "modes", "widths", "tail"]
    writer = ColumnarRecordWriter(CROSS_RUN_SCHEMA, columns)
    fields = {"mode": "b", "level": "high", "inner": {"m": "c"}, "again": {"m": "a"}}
    arrays = {
        "head": np.array([INT32_MIN, -1, 0, INT32_MAX], dtype=np.int32),
        "modes": np.array([2, 0, 1]),
        "widths": np.array([0.1, -2.5, 1e39], dtype=np.float64),
        "tail": np.array([], dtype=np.float64),
    }
    datum = {**fields, **{name: array.tolist() for name, array in arrays.items()}}
    datum["modes"] = ["c", "a", "b"]
    assert writer.encode(fields, arrays) == fastavro_bytes(CROSS_RUN_SCHEMA, datum)


def test_a_writer_without_columns_is_fastavro() -> None:
    fields = {"head": [1], "mode": "a", "modes": [], "level": "low", "inner": {"m": "a"}}
    fields |= {"widths": [], "again": "low", "tail": [0.5]}
    assert ColumnarRecordWriter(CROSS_RUN_SCHEMA, []).encode(fields, {}) == fastavro_bytes(CROSS_RUN_SCHEMA, fields)


# --- errors ------------------------------------------------------------------------------------


def test_missing_and_extra_fields_are_named() -> None:
    _, fields, columns = batch(3)
    del fields["site"]
    fields["colour"] = "red"
    with pytest.raises(ValueError, match=r"fields: missing \['site'\], unexpected \['colour'\]"):
        encode_columns(CleanReadingBatch, fields, columns)


def test_a_column_given_as_a_field_is_unexpected() -> None:
    model, fields, columns = batch(3)
    writer = ColumnarRecordWriter(raw_schema(CleanReadingBatch), COLUMNS)
    fields["quality"] = model.quality
    with pytest.raises(ValueError, match=r"fields: missing \[\], unexpected \['quality'\]"):
        writer.encode(fields, columns)


@pytest.mark.parametrize("chosen", [("v",), ("t_raw_us", "quality"), ("t_us", "v", "quality")])
def test_any_subset_of_the_arrays_can_be_columns(chosen: tuple[str, ...]) -> None:
    model, fields, columns = batch(50)
    fields |= {name: getattr(model, name) for name in COLUMNS if name not in chosen}
    payload = encode_columns(CleanReadingBatch, fields, {name: columns[name] for name in chosen})
    assert payload == encode(model)


def test_missing_and_extra_columns_are_named() -> None:
    _, fields, columns = batch(3)
    writer = ColumnarRecordWriter(raw_schema(CleanReadingBatch), COLUMNS)
    del columns["v"]
    columns["w"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"columns: missing \['v'\], unexpected \['w'\]"):
        writer.encode(fields, columns)


def test_an_unknown_column_name_is_refused_at_construction() -> None:
    _, fields, columns = batch(3)
    columns["w"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"not fields of vigil\.v1\.CleanReadingBatch: \['w'\]"):
        encode_columns(CleanReadingBatch, fields, columns)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"name": "x", "type": "long"}, "is not an array"),
        ({"name": "x", "type": {"type": "array", "items": "string"}}, "are not long, int, double, float or an enum"),
        ({"name": "x", "type": {"type": "array", "items": {"type": "long", "logicalType": "timestamp-micros"}}}, "x"),
        ({"name": "x", "type": ["null", {"type": "array", "items": "long"}]}, "is not an array"),
    ],
)
def test_a_field_that_cannot_be_a_column_is_refused_at_construction(field: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ColumnarRecordWriter({"type": "record", "name": "R", "fields": [field]}, ["x"])


@pytest.mark.parametrize(
    ("column", "array"),
    [
        ("t_us", np.zeros(3, dtype=np.float64)),
        ("quality", np.zeros(3, dtype=np.float32)),
        ("v", np.zeros(3, dtype=np.int64)),
        ("t_raw_us", np.zeros(3, dtype=np.bool_)),
        ("t_raw_us", [1, 2, 3]),
    ],
)
def test_a_column_of_the_wrong_type_is_a_type_error(column: str, array: Any) -> None:
    _, fields, columns = batch(3)
    columns[column] = array
    with pytest.raises(TypeError, match=f"column '{column}'"):
        encode_columns(CleanReadingBatch, fields, columns)


@pytest.mark.parametrize(
    ("column", "array", "message"),
    [
        ("quality", np.array([0, 5, 1]), r"must lie in \[0, 4\]"),
        ("quality", np.array([0, -1, 1]), r"must lie in \[0, 4\]"),
        ("t_us", np.array([0, 2**63, 1], dtype=np.uint64), "must lie in"),
        ("v", np.zeros((3, 1)), "must be 1-D"),
    ],
)
def test_a_column_value_out_of_range_is_a_value_error(column: str, array: Any, message: str) -> None:
    _, fields, columns = batch(3)
    columns[column] = array
    with pytest.raises(ValueError, match=message):
        encode_columns(CleanReadingBatch, fields, columns)


def test_an_int_beyond_int32_is_refused_where_fastavro_would_write_a_long() -> None:
    with pytest.raises(ValueError, match="must lie in"):
        encode_int_array(np.array([INT32_MAX + 1]))
