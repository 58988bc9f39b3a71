"""Bench: is batching several robots' frames into one inference faster?

`gopigo detect` serving a fleet could run the newest frame of N robots as
one batch of N instead of N batches of 1. This measures exactly that on the
imported yolov3-tiny with ONNX Runtime (the same runtime and graph the Rust
detector runs): the model's batch dimension is made symbolic with the `onnx`
package, and the same N letterboxed inputs run as N x batch-1 and as
1 x batch-N, alternating, with the same thread count. Printed: ms per frame
for each, and the speed-up of batching.

    ~/.cache/gopigo/vision/py/bin/python bench/detect_batching.py [SIZE] [THREADS] [ROUNDS]
    # needs the vision venv (crates/vision/setup.sh) and `onnx` importable
    # (e.g. pip install --target DIR onnx ml_dtypes; PYTHONPATH=DIR)
"""

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

MODEL = Path(os.environ.get("GOPIGO_CACHE", Path.home() / ".cache/gopigo")) / "vision/model/yolov3-tiny.onnx"


def batched_model(path):
    m = onnx.load(str(path))
    for v in list(m.graph.input) + list(m.graph.output):
        d = v.type.tensor_type.shape.dim[0]
        d.ClearField("dim_value")
        d.dim_param = "batch"
    return m.SerializeToString()


def session(model_bytes, threads):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, o, providers=["CPUExecutionProvider"])


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 416
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    s = session(batched_model(MODEL), threads)
    name = s.get_inputs()[0].name
    rng = np.random.default_rng(1)
    print(f"yolov3-tiny at {size}, ONNX Runtime {ort.__version__}, {threads} threads, "
          f"{rounds} rounds, {os.cpu_count()} CPUs")
    print("| frames (robots) | N x batch 1, ms/frame | 1 x batch N, ms/frame | batching speed-up |")
    print("| --- | --- | --- | --- |")
    for n in (2, 4):
        x = rng.random((n, 3, size, size), dtype=np.float32)
        s.run(None, {name: x})
        s.run(None, {name: x[:1]})
        singles, batches = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            for i in range(n):
                s.run(None, {name: x[i:i + 1]})
            singles.append((time.perf_counter() - t) / n)
            t = time.perf_counter()
            s.run(None, {name: x})
            batches.append((time.perf_counter() - t) / n)
        one, many = statistics.median(singles) * 1000, statistics.median(batches) * 1000
        print(f"| {n} | {one:.1f} | {many:.1f} | {one / many:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
