"""The arguments of a sweep, as Hydra's sweepers read them."""

from __future__ import annotations

import re
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf


def sweep_arguments(sweeper_cfg: DictConfig | None, overrides: list[str]) -> list[Override]:
    """``hydra.sweeper.params`` (a search preset) followed by the command line's overrides.

    This is the order Hydra's basic sweeper reads them in, so the command line wins.
    """
    params: Any = {}
    if sweeper_cfg is not None and sweeper_cfg.get("params"):
        params = OmegaConf.to_container(sweeper_cfg.params)
    lines = [f"{key}={value}" for key, value in params.items()] + list(overrides)
    return OverridesParser.create().parse_overrides(lines)


def lines(overrides: list[Override]) -> list[str]:
    """The overrides as they were written."""
    return [str(o.input_line) for o in overrides]


def quoted(value: str) -> str:
    """``value`` as a quoted string of Hydra's override grammar, so that spaces, commas,
    brackets and non-ASCII letters stay one plain string: a quote is escaped, and so are the
    backslashes before a quote or at the end (the only ones the grammar reads as escapes)."""
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"
