"""Static int8 quantisation (QDQ) of an imported darknet YOLO, calibrated
on letterboxed inputs our own pre-processing wrote as .npy files.

usage: quantize_int8.py FP32.onnx CALIB_DIR OUT.onnx

Run by gopigo_vision::int8::ensure_int8_model (crates/vision/setup.sh runs
that through the quantize_int8 example) in the set-up venv (onnxruntime +
onnx). Writes OUT.onnx through OUT.onnx.part; prints one JSON line with the
settings used. The model's metadata (gopigo.yolo: heads, anchors, names)
is kept, so the detector decodes it like the fp32 model.
"""
import glob
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

# uint8 activations x int8 weights: the pair ONNX Runtime's x86 and Arm
# integer kernels are fastest with (u8u8 was 2x slower here, s8s8 and
# reduce_range slower too). Per-channel weight scales: each of a conv's
# filters keeps its own range. Activation ranges from the 99.999th
# percentile of the calibration histograms (MinMax let rare extremes
# stretch the 256 steps: 64 % of fp32's detections matched; entropy 89 %,
# percentile 99.99 84 %, 99.9999 92 %). The first conv (the image itself,
# where a step is a visible fraction of a pixel) and the two head convs
# (logits whose sigmoid decides the score) stay fp32: excluding the first
# took the match from 64 % to 90 %, the heads a little more; together they
# are under 5 % of the multiply-adds. Measured by tests/int8.rs.
SETTINGS = {
    "format": "QDQ",
    "activations": "uint8 asymmetric",
    "weights": "int8 symmetric per-channel",
    "calibration": "Percentile 99.999",
    "excluded": "the first conv and the head convs",
}


def sensitive_convs(graph):
    """The conv reading the image and the convs whose output is a graph
    output (directly or through Identity): conv0, conv15, conv22 in
    yolov3-tiny."""
    outputs = {o.name for o in graph.output}
    for n in graph.node:
        if n.op_type == "Identity" and n.output[0] in outputs:
            outputs.add(n.input[0])
    image = graph.input[0].name
    return [
        n.name
        for n in graph.node
        if n.op_type == "Conv" and (n.input[0] == image or n.output[0] in outputs)
    ]


class Reader(CalibrationDataReader):
    def __init__(self, files, input_name):
        self.files = iter(files)
        self.input_name = input_name

    def get_next(self):
        f = next(self.files, None)
        return None if f is None else {self.input_name: np.load(f)}


def main():
    fp32, calib, out = sys.argv[1], sys.argv[2], sys.argv[3]
    files = sorted(glob.glob(os.path.join(calib, "*.npy")))
    if not files:
        sys.exit(f"no .npy calibration inputs in {calib}")
    graph = onnx.load(fp32, load_external_data=False).graph
    input_name = graph.input[0].name
    excluded = sensitive_convs(graph)
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quant_pre_process(fp32, pre, skip_symbolic_shape=True)
        quantize_static(
            pre,
            out + ".part",
            Reader(files, input_name),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
            calibrate_method=CalibrationMethod.Percentile,
            nodes_to_exclude=excluded,
            extra_options={"CalibPercentile": 99.999},
        )
    os.replace(out + ".part", out)
    print(json.dumps({"model": out, "calibration_inputs": len(files), **SETTINGS, "excluded": excluded}))


if __name__ == "__main__":
    main()
