"""sweeper's Hydra configuration, one option per YAML file. Installed as the package
``sweeper.conf`` so Hydra finds it through its ``pkg://sweeper.conf`` search path in any install
(editable, wheel); in a source checkout it stays here, at the repository's top level."""
