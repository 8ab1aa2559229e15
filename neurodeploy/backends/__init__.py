"""Execution backends: Lava's CPU simulator (lava_sim) and neurodeploy's fixed-point emulator (emulator)."""
