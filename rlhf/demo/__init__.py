"""The offline demo: the closed loop through the real app with simulated annotators."""
