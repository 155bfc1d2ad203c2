"""``python -m sweeper``: one trial, or a sweep with ``-m``."""

from sweeper.cli import main

if __name__ == "__main__":
    main()
