"""Raw YOLO-head outputs from OpenCV's own darknet importer
(cv2.dnn.readNetFromDarknet), an implementation independent of ours.

usage: opencv_ref.py CFG WEIGHTS INPUT.f32 W H OUTDIR
INPUT.f32 is the letterboxed [1, 3, H, W] float32 tensor (little-endian raw).
Writes OUTDIR/<k>.f32 (raw) and OUTDIR/<k>.shape for the k-th yolo head, in
cfg order, and prints the layer names used.
"""
import os
import sys

import cv2
import numpy as np


def main():
    cfg, weights, inp, w, h, outdir = sys.argv[1:7]
    w, h = int(w), int(h)
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    if hasattr(net, "enableWinograd"):
        net.enableWinograd(False)  # exact-ish direct convolution, not the Winograd fast path
    x = np.fromfile(inp, dtype="<f4").reshape(1, 3, h, w)
    names = net.getLayerNames()
    # The conv layer feeding each yolo layer: OpenCV names them conv_<i> / yolo_<i+1>.
    heads = []
    for name in names:
        if name.startswith("yolo_"):
            idx = int(name.split("_")[1])
            heads.append("conv_%d" % (idx - 1))
    net.setInput(x)
    outs = net.forward(heads)
    os.makedirs(outdir, exist_ok=True)
    for k, o in enumerate(outs):
        o.astype("<f4").tofile(os.path.join(outdir, "%d.f32" % k))
        with open(os.path.join(outdir, "%d.shape" % k), "w") as f:
            f.write(",".join(str(d) for d in o.shape))
    print(" ".join(heads))


if __name__ == "__main__":
    main()
