"""Gateway simulator faults: each bad package fails as its reason code says; sample faults are counted exactly."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError

from connectors.gateway.clock import parse_us
from connectors.gateway.faults import BAD_KINDS, FUTURE_SHIFT_US, STUCK_MIN, FaultRates, Injected, inject, make_bad
from connectors.gateway.plant import PlantConfig, build_plant
from connectors.gateway.simulate import build, emit
from contracts import CONTEXT_V1, KNOWN_CONTEXTS, EdgePackage, ReasonCode

pytestmark = pytest.mark.unit

# Validation error types that have their own reason code; anything else is a schema violation.
SPECIFIC = {"non_finite_value", "length_mismatch", "time_not_monotonic"}
SENT_US = 1_795_420_900_000_000


def _valid_wire(samples: int = 50) -> bytes:
    plant = build_plant(PlantConfig(samples_per_package=samples))
    built = build(plant, plant.sensors[0], 3, FaultRates(gap_rate=0, stuck_rate=0), SENT_US)
    assert built is not None
    return built[0].to_wire()


def _errors(payload: bytes) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        EdgePackage.from_wire(payload)
    return [e["type"] for e in caught.value.errors()]


@pytest.mark.parametrize("samples", [1, 2, 50])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reason", BAD_KINDS, ids=str)
def test_bad_package_fails_as_its_reason_says(reason: ReasonCode, seed: int, samples: int) -> None:
    wire = _valid_wire(samples)
    bad = make_bad(wire, reason, SENT_US, np.random.default_rng(seed))
    original = EdgePackage.from_wire(wire)
    if reason is ReasonCode.MALFORMED_JSON:
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad)
        return
    doc = json.loads(bad)  # every other kind is well-formed JSON (NaN/Infinity tokens included)
    assert doc["package_id"] != str(original.package_id)  # a bad package is not a duplicate of its source
    if reason is ReasonCode.UNKNOWN_CONTEXT:
        assert doc["@context"] != CONTEXT_V1
        assert doc["@context"] not in KNOWN_CONTEXTS
        assert _errors(bad) == ["literal_error"]
    elif reason is ReasonCode.SCHEMA_VIOLATION:
        types = _errors(bad)
        assert types
        assert not set(types) & SPECIFIC
        assert "literal_error" not in types  # the context is fine
    elif reason is ReasonCode.FUTURE_TIMESTAMP:
        package = EdgePackage.from_wire(bad)  # valid in form, only hours ahead of when it was sent
        assert package.samples is not None
        assert package.samples.t[0] >= SENT_US + FUTURE_SHIFT_US
        assert package.window.start > original.sent_at
        assert original.samples is not None
        assert package.samples.v == original.samples.v
    else:
        assert _errors(bad) == [reason.value]
        if reason is ReasonCode.NON_FINITE_VALUE:
            assert b"NaN" in bad or b"Infinity" in bad


def test_inject_counts_what_it_did() -> None:
    rates = FaultRates(outlier_rate=0.02, null_rate=0.02, gap_rate=1.0, stuck_rate=1.0)
    clean = np.round(np.sin(np.linspace(0, 50, 1000)) * 3 + 10, 3)
    for seed in range(20):
        values, keep, done = inject(clean, 40.0, rates, np.random.default_rng(seed))
        assert keep is not None
        assert done.gaps == 1
        assert done.gap_samples == np.count_nonzero(~keep)
        assert keep[0]
        assert keep[-1]
        sent = values[keep]
        assert done.nulls == np.count_nonzero(np.isnan(sent))
        spiked = np.abs(sent - clean[keep]) > 20  # spikes are 0.6..1.2 x 40 away from the signal
        assert done.outliers == np.count_nonzero(spiked & ~np.isnan(sent))


def _longest_equal_run(values: np.ndarray) -> int:
    longest = current = 1
    for a, b in itertools.pairwise(values):
        current = current + 1 if a == b else 1
        longest = max(longest, current)
    return longest


@pytest.mark.parametrize("seed", range(10))
def test_stuck_run_is_counted_exactly(seed: int) -> None:
    rates = FaultRates(outlier_rate=0, null_rate=0, gap_rate=0, stuck_rate=1.0)
    clean = np.arange(200, dtype=float) * 0.5  # strictly varying: any equal neighbours are the fault
    values, keep, done = inject(clean, 1.0, rates, np.random.default_rng(seed))
    assert keep is None
    assert done.stuck_runs == 1
    assert _longest_equal_run(values) == done.stuck_samples >= STUCK_MIN


def test_stuck_run_fits_a_small_package() -> None:
    rates = FaultRates(outlier_rate=0, null_rate=0, gap_rate=0, stuck_rate=1.0)
    for n, expected in ((3, 2), (10, 5)):
        _, _, done = inject(np.arange(n, dtype=float), 1.0, rates, np.random.default_rng(n))
        assert done.stuck_samples == expected


def test_no_rates_no_damage() -> None:
    rates = FaultRates(outlier_rate=0, null_rate=0, gap_rate=0, stuck_rate=0)
    clean = np.arange(100, dtype=float)
    values, keep, done = inject(clean, 1.0, rates, np.random.default_rng(0))
    assert keep is None
    assert done == Injected()
    assert np.array_equal(values, clean)


def test_duplicates_resend_an_earlier_package_byte_for_byte() -> None:
    rates = FaultRates(duplicate_rate=0.5, bad_rate=0.0)
    messages = list(emit(build_plant(PlantConfig()), rates, now_us=lambda: 0, rounds=4))
    sent: dict[bytes, int] = {}
    duplicates = 0
    for index, message in enumerate(messages):
        if message.category == "duplicate":
            duplicates += 1
            assert message.value in sent
            assert sent[message.value] < index
            assert json.loads(message.value)["package_id"] == str(message.package_id)
        else:
            sent.setdefault(message.value, index)
    assert duplicates > 10


def test_bad_rate_mixes_every_configured_kind() -> None:
    rates = FaultRates(bad_rate=1.0, duplicate_rate=0.0)
    messages = list(emit(build_plant(PlantConfig()), rates, now_us=lambda: SENT_US, rounds=5))
    kinds = Counter(m.reason for m in messages if m.category == "bad")
    assert set(kinds) == {k.value for k in BAD_KINDS}
    only = FaultRates(bad_rate=1.0, bad_kinds=(ReasonCode.LENGTH_MISMATCH,))
    messages = list(emit(build_plant(PlantConfig()), only, now_us=lambda: SENT_US, rounds=1))
    assert {m.reason for m in messages if m.category == "bad"} == {"length_mismatch"}


def test_future_package_is_ahead_of_its_send_time() -> None:
    bad = make_bad(_valid_wire(), ReasonCode.FUTURE_TIMESTAMP, SENT_US, np.random.default_rng(0))
    doc = json.loads(bad)
    assert parse_us(doc["sent_at"]) >= SENT_US + FUTURE_SHIFT_US
    assert parse_us(doc["window"]["end"]) >= doc["samples"]["t"][-1]
