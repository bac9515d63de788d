"""Placeholder, replaced by the real module in this session."""

import click


@click.command()
def stats_command() -> None:
    """Not written yet."""
    raise click.UsageError("not implemented yet")
