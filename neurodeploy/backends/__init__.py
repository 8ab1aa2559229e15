"""Execution backends: Lava's CPU simulator (lava_sim), neurodeploy's fixed-point emulator (emulator), the
float torch model (torch_float), behind the chip-backend registry (registry)."""
