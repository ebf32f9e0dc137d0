from connectors.files.cli import app
from infra.cli_main import run

run(app, prog_name="python -m connectors.files")
