"""qcnn-bench peer worker: runs our dense AlexNet in onnxruntime, OpenVINO (the exported ONNX
file) or ncnn (the written .param/.bin pair) for the `qcnn` harness, which starts it as a
subprocess (baselines/src/peers/python.rs).

Protocol: one request at a time. A request or reply is one JSON line, followed by exactly
`bytes` raw bytes when the line has a `bytes` field (little-endian float32 tensors).

  -> {"op": "load", "engine": "onnxruntime" | "openvino" | "ncnn" | "ncnn-default",
      "model": PATH (ONNX file, or ncnn .param), "weights": PATH (ncnn .bin only),
      "input": NAME, "input_shape": [1, 3, 227, 227], "outputs": [NAME, ...]}
  <- {"ok": true, "name": ENGINE, "version": "...", "settings": {KEY: VALUE, ...},
      "memory": {"idle_peak_rss_bytes": N, "load_peak_rss_bytes": N, "peak_reset": BOOL}}
  -> {"op": "run", "bytes": N} + N bytes (the input tensor)
  <- {"ok": true, "ns": T, "bytes": M} + M bytes (every requested output, in order)
  -> {"op": "memory"}
  <- {"ok": true, "peak_rss_bytes": N}
  -> {"op": "quit"} (or end of input)
  <- {"ok": false, "error": "...", "missing": MODULE} for any request that failed; `missing`
     only when the engine or one of its Python dependencies is not installed.

T is time.perf_counter_ns() around the engine's inference call alone: the input is bound to
the engine before the clock starts and the outputs are copied out after it stops, so neither
the pipe nor numpy conversions are timed. Every engine runs one thread, one stream; the CPU
affinity is the one inherited from the harness (pinned to one core), reported back as
settings["affinity"].

Memory is this process's own (Linux /proc/self/status VmHWM, the peak resident set size):
`idle_peak_rss_bytes` is the worker's peak before it imports the engine (the interpreter's
share), `load_peak_rss_bytes` its peak once the model is loaded; then the peak is reset
(/proc/self/clear_refs), so `peak_rss_bytes` is the peak while classifying, model resident,
as the harness measures its own modes (`peak_reset` false: the reset failed and the figure
includes the load). null where the system does not say.

Only the standard library is imported at start; the engine and numpy are imported by `load`,
and a missing one is reported with an install hint, not crashed on.
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


def peak_rss_bytes():
    """VmHWM of this process in bytes, or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak():
    """Resets VmHWM to the current resident size (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class OnnxRuntime:
    """onnxruntime's CPU execution provider, one intra-op and one inter-op thread."""

    PACKAGES = ("onnxruntime", "numpy")

    def __init__(self, req):
        import onnxruntime as ort
        import numpy as np

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
            "precision": "f32",
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

    PACKAGES = ("openvino", "numpy")
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
        import openvino as ov
        import numpy as np

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


class Ncnn:
    """ncnn (Tencent) on the CPU, one thread, Vulkan off.

    `fp32` (the `ncnn` peer): every reduced-precision option off, so weights, activations and
    arithmetic stay float32 like every other column. Otherwise (`ncnn-default`): ncnn's options
    as it ships, which store (and on some CPUs compute) in fp16 where a layer supports it.
    Algorithm choices (Winograd, im2col+sgemm, packed layouts) are ncnn's own in both.
    """

    PACKAGES = ("ncnn", "numpy")
    REDUCED_PRECISION = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                         "use_bf16_packed", "use_bf16_storage", "use_int8_inference")
    REPORTED = REDUCED_PRECISION + ("use_packing_layout", "use_winograd_convolution",
                                    "use_sgemm_convolution", "lightmode")

    def __init__(self, req, fp32):
        import ncnn
        import numpy as np

        self.np = np
        self.ncnn = ncnn
        self.net = ncnn.Net()
        opt = self.net.opt
        opt.num_threads = 1
        opt.use_vulkan_compute = False
        if fp32:
            for key in self.REDUCED_PRECISION:
                setattr(opt, key, False)
        # Options take effect when the layers are created: set before loading.
        if self.net.load_param(req["model"]) != 0:
            raise RuntimeError(f"ncnn could not read {req['model']}")
        if self.net.load_model(req["weights"]) != 0:
            raise RuntimeError(f"ncnn could not read {req['weights']}")
        self.input = req["input"]
        self.shape = req["input_shape"]
        # ncnn's input is one (C, H, W) map: drop the batch dimension of 1.
        self.map_shape = tuple(self.shape[1:])
        # The outputs come as (result, its softmax input): extract the one nearer the input
        # first, or ncnn's light mode frees it on the way and recomputes the network for it.
        self.outputs = req["outputs"]
        self.version = ncnn.__version__
        self.settings = {key: str(getattr(opt, key)) for key in self.REPORTED}
        self.settings["num_threads"] = str(opt.num_threads)
        self.settings["use_vulkan_compute"] = str(opt.use_vulkan_compute)
        self.settings["precision"] = "f32 forced" if fp32 else "ncnn defaults (fp16 storage where supported)"
        self.settings["timed"] = "Extractor.extract of every output, input set beforehand"

    def run(self, x):
        ex = self.net.create_extractor()
        if ex.input(self.input, self.ncnn.Mat(x.reshape(self.map_shape))) != 0:
            raise RuntimeError(f"ncnn refused the input {self.input}")
        mats = {}
        start = time.perf_counter_ns()
        for name in reversed(self.outputs):
            ret, mats[name] = ex.extract(name)
            if ret != 0:
                raise RuntimeError(f"ncnn could not compute blob {name} (code {ret})")
        ns = time.perf_counter_ns() - start
        return ns, [self.np.array(mats[name]) for name in self.outputs]


ENGINES = {
    "onnxruntime": OnnxRuntime,
    "openvino": OpenVino,
    "ncnn": lambda req: Ncnn(req, fp32=True),
    "ncnn-default": lambda req: Ncnn(req, fp32=False),
}
PACKAGES = {
    "onnxruntime": OnnxRuntime.PACKAGES,
    "openvino": OpenVino.PACKAGES,
    "ncnn": Ncnn.PACKAGES,
    "ncnn-default": Ncnn.PACKAGES,
}


def load(req):
    name = req.get("engine")
    if name not in ENGINES:
        return None, {"ok": False, "error": f"unknown engine {name!r} (known: {', '.join(ENGINES)})"}
    idle = peak_rss_bytes()
    try:
        engine = ENGINES[name](req)
    except ModuleNotFoundError as e:
        # The engine or one of its dependencies (numpy) is not installed: the one expected
        # absence, told apart from every other failure.
        missing = e.name or str(e)
        hint = f"install it: pip install {' '.join(PACKAGES[name])}"
        return None, {"ok": False, "missing": missing, "error": f"{e} ({hint})"}
    except Exception as e:  # a broken install, the engine's refusal (bad file, unsupported op)
        return None, {"ok": False, "error": f"{type(e).__name__}: {e}"}
    loaded = peak_rss_bytes()
    reset = reset_peak()
    settings = dict(engine.settings)
    settings["affinity"] = affinity()
    settings["python"] = sys.version.split()[0]
    settings["numpy"] = engine.np.__version__
    memory = {"idle_peak_rss_bytes": idle, "load_peak_rss_bytes": loaded, "peak_reset": reset}
    reply = {"ok": True, "name": name, "version": str(engine.version), "settings": settings,
             "memory": memory}
    return engine, reply


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
            elif op == "memory":
                send({"ok": True, "peak_rss_bytes": peak_rss_bytes()})
            else:
                send({"ok": False, "error": f"unknown op {op!r}"})
        except EOFError:
            break
        except Exception as e:
            send({"ok": False, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
