"""The same end-to-end pipeline in Python, for the benchmark table:
JPEG decode -> letterbox (grey 0.5, bilinear) -> onnxruntime -> YOLOv3 head
decode -> class-wise NMS, same model, same thread count, same images.

usage: bench_python.py MODEL.onnx SIZE THREADS FRAMES {cv2|pil} IMAGE...
Prints one JSON line: {"fps": ..., "frames": ..., "detections": ...}.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def letterbox_cv2(img, size):
    import cv2
    h, w = img.shape[:2]
    if size / w < size / h:
        nw, nh = size, (h * size) // w
    else:
        nw, nh = (w * size) // h, size
    r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), 0.5, dtype=np.float32)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = r.astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1))[None], (w, h, nw, nh)


def decode_cv2(data):
    import cv2
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_pil(data):
    import io
    from PIL import Image
    return Image.open(io.BytesIO(data)).convert("RGB")


def letterbox_pil(img, size):
    from PIL import Image
    w, h = img.size
    if size / w < size / h:
        nw, nh = size, (h * size) // w
    else:
        nw, nh = (w * size) // h, size
    r = img.resize((nw, nh), Image.BILINEAR)
    canvas = np.full((size, size, 3), 0.5, dtype=np.float32)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = np.asarray(r, dtype=np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1))[None], (w, h, nw, nh)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def postprocess(outs, meta, size, geom, thresh=0.5, nms=0.45):
    w, h, nw, nh = geom
    anchors = np.array(meta["anchors"], dtype=np.float32)
    boxes, scores, classes = [], [], []
    for out, head in zip(outs, meta["heads"]):
        _, c, gh, gw = out.shape
        na = len(head["mask"])
        p = out.reshape(na, c // na, gh, gw)
        obj = sigmoid(p[:, 4])
        a, r, col = np.nonzero(obj > thresh)
        if a.size == 0:
            continue
        sel = p[a, :, r, col]  # [k, 5+C]
        o = obj[a, r, col]
        cls = o[:, None] * sigmoid(sel[:, 5:])
        anc = anchors[np.array(head["mask"])[a]]
        bx = (col + sigmoid(sel[:, 0])) / gw
        by = (r + sigmoid(sel[:, 1])) / gh
        bw = np.exp(sel[:, 2]) * anc[:, 0] / size
        bh = np.exp(sel[:, 3]) * anc[:, 1] / size
        bx = (bx - (size - nw) / 2 / size) / (nw / size) * w
        by = (by - (size - nh) / 2 / size) / (nh / size) * h
        bw = bw * size / nw * w
        bh = bh * size / nh * h
        k, j = np.nonzero(cls > thresh)
        for kk, jj in zip(k, j):
            boxes.append([bx[kk] - bw[kk] / 2, by[kk] - bh[kk] / 2, bw[kk], bh[kk]])
            scores.append(float(cls[kk, jj]))
            classes.append(int(jj))
    if not boxes:
        return []
    import cv2
    keep = cv2.dnn.NMSBoxesBatched(boxes, scores, classes, thresh, nms)
    return [(classes[i], scores[i], boxes[i]) for i in np.array(keep).reshape(-1)]


def main():
    model, size, threads, frames, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    images = [open(p, "rb").read() for p in sys.argv[6:]]
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["gopigo.yolo"])
    name = sess.get_inputs()[0].name
    decode, letterbox = (decode_cv2, letterbox_cv2) if kind == "cv2" else (decode_pil, letterbox_pil)

    stages = {"decode": 0.0, "letterbox": 0.0, "infer": 0.0, "post": 0.0}

    def run(data):
        t0 = time.perf_counter()
        img = decode(data)
        t1 = time.perf_counter()
        x, geom = letterbox(img, size)
        t2 = time.perf_counter()
        outs = sess.run(None, {name: x})
        t3 = time.perf_counter()
        r = postprocess(outs, meta, size, geom)
        t4 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[k] += v
        return r

    for data in images[:3]:
        run(data)  # warm-up
    for k in stages:
        stages[k] = 0.0
    n = 0
    times = []
    t0 = time.perf_counter()
    for i in range(frames):
        t = time.perf_counter()
        n += len(run(images[i % len(images)]))
        times.append(time.perf_counter() - t)
    dt = time.perf_counter() - t0
    median = sorted(times)[len(times) // 2]
    ms = {k: round(v / frames * 1000, 2) for k, v in stages.items()}
    print(json.dumps({"fps": frames / dt, "median_fps": 1.0 / median, "frames": frames, "detections": n, "stages_ms": ms}))


if __name__ == "__main__":
    main()
