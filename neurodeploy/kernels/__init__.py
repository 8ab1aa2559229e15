"""Pure kernels: Lava's fixed-point arithmetic (numpy, no I/O, no Lava) and the limits of Lava / Loihi 2."""
