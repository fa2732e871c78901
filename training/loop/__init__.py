"""The training loop: `genspot train`, its processes and epochs, metrics, temperature calibration, curves."""
