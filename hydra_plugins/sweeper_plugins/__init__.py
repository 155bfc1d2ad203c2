"""sweeper's Hydra plugins: the ``pool`` launcher."""
