"""Export: checkpoint -> self-contained bundle (TorchScript, Torch-TensorRT), parity checks, benchmarks."""
