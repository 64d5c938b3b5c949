"""zkml: compile ONNX models to zero-knowledge circuits (circom + Groth16)."""
__version__ = "0.1.0"
