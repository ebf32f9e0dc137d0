from infra.cli_main import run
from jobs.lake.cli import app

run(app, prog_name="python -m jobs.lake")
