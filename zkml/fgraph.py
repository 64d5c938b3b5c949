"""The canonical float graph that onnx_import produces and quantize consumes.

Every node is one of the canonical operators the registry knows (Dense, Add, Relu,
Reshape, Softmax), holding its constants as numpy arrays and remembering which ONNX nodes
it came from, so errors and generated code can name them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FNode:
    op: str
    name: str
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    onnx: list[str] = field(default_factory=list)   # "OpType 'name'" of the source ONNX nodes


@dataclass
class FGraph:
    inputs: list[str]
    outputs: list[str]
    shapes: dict[str, list[int]]
    nodes: list[FNode]
    constants: dict[str, np.ndarray]
    opset: int
    source: str = ""
    # pre-quantized models (zkml/qdq.py): the model's own grids for activations and weights
    act_grids: dict = field(default_factory=dict)
    weight_grids: dict = field(default_factory=dict)

    def consumers(self, tensor: str) -> list[FNode]:
        return [n for n in self.nodes if tensor in n.inputs]
