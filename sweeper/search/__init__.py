"""Search: which configurations run. Hydra's grid needs nothing here; ``hydra/sweeper=tuner``
drives keras-tuner's oracles over Hydra's sweep syntax (space, settings, plan, oracle, loop)."""
