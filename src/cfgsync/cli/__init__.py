"""The ``cfgsync`` command line. Each subcommand lives in a module of its own.

I/O: this package is the only reader of argv and the environment.
"""

from __future__ import annotations

import click

import cfgsync
from cfgsync.cli import gitops, live, render


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(cfgsync.__version__, prog_name="cfgsync")
def main() -> None:
    """Keep ConfigMaps and Secrets copied across namespaces: a drop-in successor to kubed."""


main.add_command(render.render)
main.add_command(render.explain_command)
main.add_command(live.apply_command)
main.add_command(live.run_command)
gitops.register(main)
