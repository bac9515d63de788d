"""Placeholder, replaced by the real module in this session."""

import click


@click.command()
def convert_command() -> None:
    """Not written yet."""
    raise click.UsageError("not implemented yet")
