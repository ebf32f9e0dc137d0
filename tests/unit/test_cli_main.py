"""Our command lines end on a bad setting with the variable's name and exit 2, not with a traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import typer
from pydantic import ValidationError

from contracts import Alert
from infra.cli_main import EXIT_BAD_SETTINGS, exit_on_bad_settings, run
from jobs.nightly.settings import NightlySettings
from streams.settings import StreamSettings

pytestmark = pytest.mark.unit


def _app(command: Callable[[], object]) -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command()(command)
    return app


def _nightly() -> None:
    NightlySettings()


def test_a_bad_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VIGIL_NIGHTLY_TRAILING_DAYS", "1000")
    monkeypatch.setenv("VIGIL_NIGHTLY_UNHEALTHY_BELOW", "many")
    with pytest.raises(SystemExit) as ended:
        run(_app(_nightly), args=[])
    assert ended.value.code == EXIT_BAD_SETTINGS
    err = capsys.readouterr().err
    assert "invalid setting: VIGIL_NIGHTLY_TRAILING_DAYS: Input should be less than or equal to 90" in err
    assert "invalid setting: VIGIL_NIGHTLY_UNHEALTHY_BELOW: Input should be a valid number" in err
    assert "Traceback" not in err


def test_a_check_across_settings_names_the_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIGIL_NIGHTLY_HEALTHY_AGAIN_AT", "40")
    with pytest.raises(SystemExit) as ended:
        run(_app(_nightly), args=[])
    assert ended.value.code == EXIT_BAD_SETTINGS
    assert "invalid setting: NightlySettings: Value error, healthy_again_at (40)" in capsys.readouterr().err


def test_good_settings_run_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_NIGHTLY_HEALTHY_AGAIN_AT", raising=False)
    ran: list[bool] = []
    with pytest.raises(SystemExit) as ended:
        run(_app(lambda: ran.append(NightlySettings().healthy_again_at == 60.0)), args=[])
    assert ended.value.code == 0
    assert ran == [True]


def test_other_validation_errors_keep_their_traceback() -> None:
    # A contract refusing data inside a command is a bug or a data error, not a setting: it is not hidden.
    with pytest.raises(ValidationError, match="validation errors for Alert"):
        run(_app(lambda: Alert.model_validate({})), args=[])


def test_the_stream_worker_settings_end_the_same_way(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The Faust worker reads them at import, outside any command line of ours (streams/app.py).
    monkeypatch.setenv("VIGIL_STREAMS_METRICS_PORT", "x")
    with pytest.raises(SystemExit) as ended, exit_on_bad_settings():
        StreamSettings()
    assert ended.value.code == EXIT_BAD_SETTINGS
    assert "invalid setting: VIGIL_STREAMS_METRICS_PORT: Input should be a valid integer" in capsys.readouterr().err
