"""qcnn-bench peer worker: runs the exported ONNX AlexNet in onnxruntime or OpenVINO for the
`qcnn` harness, which starts it as a subprocess (baselines/src/peers/python.rs).

Protocol: one request at a time. A request or reply is one JSON line, followed by exactly
`bytes` raw bytes when the line has a `bytes` field (little-endian float32 tensors).

  -> {"op": "load", "engine": "onnxruntime" | "openvino", "model": PATH,
      "input": NAME, "input_shape": [1, 3, 227, 227], "outputs": [NAME, ...]}
  <- {"ok": true, "name": ENGINE, "version": "...", "settings": {KEY: VALUE, ...}}
  -> {"op": "run", "bytes": N} + N bytes (the input tensor)
  <- {"ok": true, "ns": T, "bytes": M} + M bytes (every requested output, in order)
  -> {"op": "quit"} (or end of input)
  <- {"ok": false, "error": "..."} for any request that failed.

T is time.perf_counter_ns() around the engine's inference call alone: the input is bound to
the engine before the clock starts and the outputs are copied out after it stops, so neither
the pipe nor numpy conversions are timed. Every engine runs one thread, one stream, f32; the
CPU affinity is the one inherited from the harness (pinned to one core), reported back as
settings["affinity"]. Only the standard library and the engine's own dependencies (numpy)
are imported at start, so a missing engine is reported, not crashed on.
"""

import json
import os
import sys
import time

# Thread pools that an engine's dependencies may start (numpy's BLAS, OpenMP): one thread.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# The protocol owns the real stdout; anything a library prints goes to stderr instead.
PROTO_OUT = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr
PROTO_IN = sys.stdin.buffer


def send(reply, payload=b""):
    if payload:
        reply["bytes"] = len(payload)
    PROTO_OUT.write(json.dumps(reply).encode() + b"\n")
    if payload:
        PROTO_OUT.write(payload)
    PROTO_OUT.flush()


def read_exact(n):
    data = PROTO_IN.read(n)
    if data is None or len(data) != n:
        raise EOFError(f"expected {n} payload bytes, got {0 if data is None else len(data)}")
    return data


def read_into(array):
    """Fills a writable, contiguous numpy array from the protocol input."""
    view = memoryview(array).cast("B")
    done = 0
    while done < len(view):
        got = PROTO_IN.readinto(view[done:])
        if not got:
            raise EOFError(f"expected {len(view)} payload bytes, got {done}")
        done += got


def affinity():
    try:
        return ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return "unknown"


class OnnxRuntime:
    """onnxruntime's CPU execution provider, one intra-op and one inter-op thread."""

    def __init__(self, req):
        import numpy as np
        import onnxruntime as ort

        self.np = np
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(req["model"], opts, providers=["CPUExecutionProvider"])
        self.input = req["input"]
        self.shape = req["input_shape"]
        self.outputs = req["outputs"]
        self.binding = self.session.io_binding()
        self.version = ort.__version__
        self.settings = {
            "providers": ",".join(self.session.get_providers()),
            "intra_op_num_threads": str(opts.intra_op_num_threads),
            "inter_op_num_threads": str(opts.inter_op_num_threads),
            "execution_mode": "sequential",
            "graph_optimization_level": "all",
            "timed": "InferenceSession.run_with_iobinding, input bound beforehand",
        }

    def run(self, x):
        self.binding.clear_binding_inputs()
        self.binding.clear_binding_outputs()
        self.binding.bind_cpu_input(self.input, x)
        for name in self.outputs:
            self.binding.bind_output(name, "cpu")
        start = time.perf_counter_ns()
        self.session.run_with_iobinding(self.binding)
        ns = time.perf_counter_ns() - start
        return ns, self.binding.copy_outputs_to_cpu()


class OpenVino:
    """OpenVINO's CPU plugin: one inference thread, one stream, f32, latency hint."""

    CONFIG = {
        "INFERENCE_NUM_THREADS": 1,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        # bf16 is the default on CPUs with AVX512_BF16/AMX: we compare f32 networks.
        "INFERENCE_PRECISION_HINT": "f32",
        # Leave thread placement to the affinity inherited from the harness.
        "ENABLE_CPU_PINNING": False,
    }

    def __init__(self, req):
        import numpy as np
        import openvino as ov

        self.np = np
        core = ov.Core()
        model = core.read_model(req["model"])
        self.compiled = core.compile_model(model, "CPU", self.CONFIG)
        self.request = self.compiled.create_infer_request()
        self.shape = req["input_shape"]
        self.outputs = [self.compiled.output(name) for name in req["outputs"]]
        self.ov = ov
        self.version = ov.get_version()
        self.settings = {
            key: text(self.compiled.get_property(key))
            for key in ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT",
                        "INFERENCE_PRECISION_HINT", "ENABLE_CPU_PINNING")
        }
        self.settings["device"] = "CPU"
        self.settings["timed"] = "InferRequest.infer, input tensor set beforehand"

    def run(self, x):
        self.request.set_input_tensor(self.ov.Tensor(x, shared_memory=True))
        start = time.perf_counter_ns()
        self.request.infer()
        ns = time.perf_counter_ns() - start
        return ns, [self.request.get_tensor(o).data.copy() for o in self.outputs]


def text(value):
    """An OpenVINO property as text ('f32', not "<Type: 'float32'>")."""
    return value.to_string() if hasattr(value, "to_string") else str(value)


ENGINES = {"onnxruntime": OnnxRuntime, "openvino": OpenVino}


def load(req):
    name = req.get("engine")
    if name not in ENGINES:
        return None, {"ok": False, "error": f"unknown engine {name!r} (known: {', '.join(ENGINES)})"}
    try:
        engine = ENGINES[name](req)
    except ImportError as e:
        return None, {"ok": False, "error": f"{e} (install it: pip install {name})"}
    except Exception as e:  # the engine's own refusal (bad file, unsupported op, ...)
        return None, {"ok": False, "error": f"{type(e).__name__}: {e}"}
    settings = dict(engine.settings)
    settings["affinity"] = affinity()
    settings["python"] = sys.version.split()[0]
    settings["numpy"] = engine.np.__version__
    return engine, {"ok": True, "name": name, "version": str(engine.version), "settings": settings}


def run(engine, req):
    n = req["bytes"]
    if engine is None:
        read_exact(n)
        return {"ok": False, "error": "run before a successful load"}, b""
    np = engine.np
    x = np.empty(engine.shape, dtype="<f4")
    if x.nbytes != n:
        read_exact(n)
        return {"ok": False, "error": f"input of {n} bytes, the model takes {x.nbytes}"}, b""
    read_into(x)
    ns, outputs = engine.run(x)
    payload = b"".join(np.ascontiguousarray(o, dtype="<f4").tobytes() for o in outputs)
    return {"ok": True, "ns": ns}, payload


def main():
    engine = None
    for line in PROTO_IN:
        try:
            req = json.loads(line)
        except ValueError as e:
            send({"ok": False, "error": f"not a JSON request: {e}"})
            continue
        op = req.get("op")
        if op == "quit":
            break
        try:
            if op == "load":
                engine, reply = load(req)
                send(reply)
            elif op == "run":
                reply, payload = run(engine, req)
                send(reply, payload)
            else:
                send({"ok": False, "error": f"unknown op {op!r}"})
        except EOFError:
            break
        except Exception as e:
            send({"ok": False, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
