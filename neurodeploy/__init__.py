"""neurodeploy: train, export and run spiking networks on Loihi-style chips, and compare with RNN/LSTM."""

__version__ = "0.1.0"
