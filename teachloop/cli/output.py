"""What every command prints through, and -v for the inference engines' output."""

from __future__ import annotations

from rich.console import Console

# soft_wrap: piped or logged output keeps each line whole (rich cuts at 80 columns off a terminal)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

VERBOSE = ("--verbose", "-v")
VERBOSE_HELP = "Show vLLM's, Ray's and Triton's own output on the terminal (default: the run's logs/engines.log)."


def engines_verbose(verbose: bool) -> None:
    """-v: the inference engines write to the terminal, as without teachloop."""
    from teachloop.inference.engine_logs import set_verbose

    set_verbose(verbose)
