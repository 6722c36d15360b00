"""Training the mask classifier (needs the ``train`` extra: torch, matplotlib)."""
