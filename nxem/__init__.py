"""Ningxia key energy-using units monitoring pipeline: shared contract, CLI and service runner."""
