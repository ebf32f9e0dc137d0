from infra.cli_main import run
from jobs.nightly.cli import app

run(app, prog_name="python -m jobs.nightly")
