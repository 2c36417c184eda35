"""`python -m dciot.cli.single_group GROUP ARGS...` runs `dciot GROUP ARGS...` importing only
that command group, e.g. `edge run gateway.yaml`.

`dciot` imports every command group (the cloud's and the event centre's pull in FastAPI): about
1 s of CPU per process. The demo and the integration tests start many edge agents, simulators
and clouds as processes (dciot/demo/services.py), so they start them this way: the same command,
the same options, a third of the start-up cost. Anything that is not a command group (`demo`,
`status`) runs through the full `dciot` app.
"""

from __future__ import annotations

import importlib
import sys

import typer

GROUPS = frozenset({"edge", "cloud", "sim", "dashboards"})


def main() -> None:
    group = sys.argv[1] if len(sys.argv) > 1 else ""
    if group not in GROUPS:
        from dciot.cli.main import app

        app(prog_name="dciot")
        return
    root = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
    root.add_typer(importlib.import_module(f"dciot.cli.{group}").app, name=group)
    root(prog_name="dciot")


if __name__ == "__main__":
    main()
