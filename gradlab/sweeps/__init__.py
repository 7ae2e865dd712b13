"""Sweeps: the resumable runner, the scaling study's cells and power-law fits."""
