"""Inspect, clean and reset the streaming job's Spark checkpoints (`python -m checkpoint_tools --help`)."""
