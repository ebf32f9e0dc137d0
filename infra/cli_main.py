"""How our command lines start: a bad setting ends them with one line per problem and exit 2, not a traceback.

Settings come from VIGIL_* environment variables (pydantic-settings) and are read inside the commands, so an
invalid value surfaces as a pydantic ValidationError deep in a command; the operator needs its name and why.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings

EXIT_BAD_SETTINGS = 2  # as a usage error


def _settings_models() -> dict[str, type[BaseSettings]]:
    found: dict[str, type[BaseSettings]] = {}
    pending = list(BaseSettings.__subclasses__())
    while pending:
        model = pending.pop()
        found[model.__name__] = model
        pending.extend(model.__subclasses__())
    return found


def _variable(model: type[BaseSettings] | None, field: str) -> str | None:
    """The environment variable a settings field is read from (its prefix + name; case does not matter)."""
    if model is None or field not in model.model_fields:
        return None
    return (str(model.model_config.get("env_prefix", "")) + field).upper()


def settings_problems(exc: ValidationError) -> list[str]:
    """`VARIABLE: message` per problem; `Model: message` for a check across fields."""
    model = _settings_models().get(exc.title)
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        name = _variable(model, field) or (f"{exc.title}.{field}" if field else exc.title)
        problems.append(f"{name}: {error['msg']}")
    return problems


def run(app: typer.Typer, prog_name: str | None = None, args: Sequence[str] | None = None) -> None:
    """Run `app` (as `app()` would); a settings model that refuses its environment ends it cleanly."""
    with exit_on_bad_settings():
        app(args=list(args) if args is not None else None, prog_name=prog_name)


@contextmanager
def exit_on_bad_settings() -> Iterator[None]:
    """Inside the block, a settings model refusing its environment ends the process with exit 2 and the problems;
    for code that reads its settings outside a command line of ours (the Faust worker, at import)."""
    try:
        yield
    except ValidationError as exc:
        if not exc.title.endswith("Settings"):  # not a setting: a bug, whose traceback is wanted
            raise
        for problem in settings_problems(exc):
            print(f"invalid setting: {problem}", file=sys.stderr)
        print(
            'settings come from VIGIL_* environment variables: see the README\'s "Ports and settings"', file=sys.stderr
        )
        raise SystemExit(EXIT_BAD_SETTINGS) from None
