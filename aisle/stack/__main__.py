"""`python -m aisle.stack supervise`: the supervisor process, started by `up` as a component."""

from __future__ import annotations

import sys

from core.settings import get_settings

from .supervisor import supervise


def main() -> None:
    if sys.argv[1:] != ["supervise"]:
        raise SystemExit("usage: python -m aisle.stack supervise")
    supervise(get_settings())


if __name__ == "__main__":
    main()
