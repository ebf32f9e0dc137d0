from jobs.nightly.cli import app

app()
