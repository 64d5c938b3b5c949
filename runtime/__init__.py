"""zkml's reference runtime: a pure-integer numpy interpreter of the IR.

This is the specification. The circuit's outputs must equal `run(...)` bit for bit; the
dequantized outputs must stay close to onnxruntime's float outputs. Each operator's
integer kernel lives with the operator (zkml/ops/<op>.py); this package executes them.
"""
from .interpreter import dequantize, postprocess, quantize_input, run, run_outputs  # noqa: F401
