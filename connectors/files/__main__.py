from connectors.files.cli import app

app()
