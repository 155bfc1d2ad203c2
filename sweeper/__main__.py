"""``python -m sweeper``: one trial, or a sweep with ``-m``."""

from sweeper.app import cli

if __name__ == "__main__":
    cli()
