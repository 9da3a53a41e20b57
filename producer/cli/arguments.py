"""Arguments and options several `sluice` commands share, defined once."""

from __future__ import annotations

from typing import Annotated

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JobIdArg = Annotated[str, typer.Argument(help="The job's id, as printed by `sluice enqueue`.")]
