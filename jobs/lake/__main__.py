from jobs.lake.cli import app

app()
