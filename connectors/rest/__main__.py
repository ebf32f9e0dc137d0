from connectors.rest.cli import app

app(prog_name="python -m connectors.rest")
