"""Writes an ONNX AlexNet with the `onnx` package's own helpers (a third-party writer, not
qcnn's exporter) from a dense model folder in the authors' format, for
baselines/tests/import.rs.

It reads the `.bin` files itself (int32 n, n int32 dims, little-endian f32 data) and uses
ONNX forms our exporter never writes: opset 11, fc7 as MatMul + Add, fc8 as Gemm with
transB = 0, Dropout nodes, a Flatten before fc6.

usage: third_party_onnx.py MODEL_DIR PREFIX OUT.onnx
"""
import os
import struct
import sys

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper, save


def read_bin(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack_from("<i", data, 0)[0]
    dims = struct.unpack_from("<%di" % n, data, 4)
    values = np.frombuffer(data, dtype="<f4", offset=4 + 4 * n)
    assert values.size == int(np.prod(dims)), path
    return values.reshape(dims).astype(np.float32)


def main():
    folder, prefix, out = sys.argv[1:4]

    def param(kind, number):
        return read_bin(os.path.join(folder, "%s.%s.%02d.bin" % (prefix, kind, number)))

    inits, nodes = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(array, name))
        return name

    def conv(name, number, x, stride, pad, group):
        w = const(name + "_w", param("convKnl", number))
        b = const(name + "_b", param("biasVec", number))
        k = int(param("convKnl", number).shape[2])
        nodes.append(helper.make_node("Conv", [x, w, b], [name], name=name,
                                      kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[pad] * 4, group=group))
        return name

    def unary(op, name, x, **attrs):
        nodes.append(helper.make_node(op, [x], [name], name=name, **attrs))
        return name

    def pool(name, x):
        return unary("MaxPool", name, x, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)

    def lrn(name, x):
        return unary("LRN", name, x, size=5, alpha=1e-4, beta=0.75, bias=1.0)

    x = "data"
    x = conv("conv1", 1, x, 4, 0, 1)
    x = pool("pool1", lrn("norm1", unary("Relu", "relu1", x)))
    x = conv("conv2", 5, x, 1, 2, 2)
    x = pool("pool2", lrn("norm2", unary("Relu", "relu2", x)))
    x = unary("Relu", "relu3", conv("conv3", 9, x, 1, 1, 1))
    x = unary("Relu", "relu4", conv("conv4", 11, x, 1, 1, 2))
    x = pool("pool5", unary("Relu", "relu5", conv("conv5", 13, x, 1, 1, 2)))
    x = unary("Flatten", "flatten", x, axis=1)
    w6, b6 = const("fc6_w", param("fcntWei", 16)), const("fc6_b", param("biasVec", 16))
    nodes.append(helper.make_node("Gemm", [x, w6, b6], ["fc6"], name="fc6", transB=1))
    x = unary("Dropout", "drop6", unary("Relu", "relu6", "fc6"), ratio=0.5)
    w7 = const("fc7_wt", np.ascontiguousarray(param("fcntWei", 19).T))
    nodes.append(helper.make_node("MatMul", [x, w7], ["fc7_mm"], name="fc7"))
    nodes.append(helper.make_node("Add", ["fc7_mm", const("fc7_b", param("biasVec", 19))],
                                  ["fc7"], name="fc7_bias"))
    x = unary("Dropout", "drop7", unary("Relu", "relu7", "fc7"), ratio=0.5)
    w8 = const("fc8_wt", np.ascontiguousarray(param("fcntWei", 22).T))
    b8 = const("fc8_b", param("biasVec", 22))
    nodes.append(helper.make_node("Gemm", [x, w8, b8], ["fc8"], name="fc8", transB=0))
    x = unary("Softmax", "prob", "fc8", axis=1)

    graph = helper.make_graph(
        nodes, "alexnet_third_party",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 227, 227])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1000])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="onnx.helper",
                              opset_imports=[helper.make_opsetid("", 11)])
    checker.check_model(model)
    save(model, out)


if __name__ == "__main__":
    main()
