"""The nightly batch's settings: thresholds checked at start, the lake root shared with the writer."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobs.lake.settings import LakeSettings
from jobs.nightly.settings import NightlySettings

pytestmark = pytest.mark.unit


def test_healthy_again_below_unhealthy_is_refused() -> None:
    with pytest.raises(ValidationError, match="healthy_again_at"):
        NightlySettings(unhealthy_below=50.0, healthy_again_at=40.0)
    assert NightlySettings(unhealthy_below=50.0, healthy_again_at=50.0).healthy_again_at == 50.0


def test_the_batch_follows_a_moved_lake_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_NIGHTLY_ROOT", raising=False)
    monkeypatch.delenv("VIGIL_LAKE_ROOT", raising=False)
    assert NightlySettings().root == LakeSettings().root == "s3a://lake"
    monkeypatch.setenv("VIGIL_LAKE_ROOT", "s3a://lake/plant-2")
    assert NightlySettings().root == LakeSettings().root == "s3a://lake/plant-2"


def test_a_root_of_its_own_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_LAKE_ROOT", "s3a://lake/plant-2")
    monkeypatch.setenv("VIGIL_NIGHTLY_ROOT", "s3a://archive")
    assert NightlySettings().root == "s3a://archive"
    assert NightlySettings(root="s3a://elsewhere").root == "s3a://elsewhere"
