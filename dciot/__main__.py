from dciot.cli.main import app

app(prog_name="dciot")
