"""darknet's own pipeline (Debian's libdarknet.so, as `darknet detector
test` runs it) timed per frame: load_image_color, letterbox_image,
network_predict, get_network_boxes, do_nms_sort.

usage: bench_darknet.py CFG WEIGHTS SIZE FRAMES IMAGE...
Prints one JSON line: {"fps": ..., "frames": ...}. Threads: OMP_NUM_THREADS.
"""
import ctypes as C
import json
import os
import sys
import time

LIB = os.environ.get("DARKNET_LIB", "/usr/lib/darknet/libdarknet.so")


class IMAGE(C.Structure):
    _fields_ = [("w", C.c_int), ("h", C.c_int), ("c", C.c_int), ("data", C.POINTER(C.c_float))]


def main():
    cfg, weights, size, frames = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
    images = [p.encode() for p in sys.argv[5:]]
    lib = C.CDLL(LIB, C.RTLD_GLOBAL)
    lib.load_network.argtypes = [C.c_char_p, C.c_char_p, C.c_int]
    lib.load_network.restype = C.c_void_p
    lib.resize_network.argtypes = [C.c_void_p, C.c_int, C.c_int]
    lib.load_image_color.argtypes = [C.c_char_p, C.c_int, C.c_int]
    lib.load_image_color.restype = IMAGE
    lib.letterbox_image.argtypes = [IMAGE, C.c_int, C.c_int]
    lib.letterbox_image.restype = IMAGE
    lib.network_predict.argtypes = [C.c_void_p, C.POINTER(C.c_float)]
    lib.network_predict.restype = C.POINTER(C.c_float)
    lib.get_network_boxes.argtypes = [C.c_void_p, C.c_int, C.c_int, C.c_float, C.c_float,
                                      C.POINTER(C.c_int), C.c_int, C.POINTER(C.c_int)]
    lib.get_network_boxes.restype = C.c_void_p
    lib.do_nms_sort.argtypes = [C.c_void_p, C.c_int, C.c_int, C.c_float]
    lib.free_detections.argtypes = [C.c_void_p, C.c_int]
    lib.free_image.argtypes = [IMAGE]
    net = lib.load_network(cfg, weights, 0)
    lib.resize_network(net, size, size)

    def run(path):
        im = lib.load_image_color(path, 0, 0)
        sized = lib.letterbox_image(im, size, size)
        lib.network_predict(net, sized.data)
        n = C.c_int(0)
        dets = lib.get_network_boxes(net, im.w, im.h, 0.5, 0.5, None, 1, C.byref(n))
        lib.do_nms_sort(dets, n.value, 80, 0.45)
        lib.free_detections(dets, n.value)
        lib.free_image(sized)
        lib.free_image(im)

    run(images[0])
    times = []
    t0 = time.perf_counter()
    for i in range(frames):
        t = time.perf_counter()
        run(images[i % len(images)])
        times.append(time.perf_counter() - t)
    dt = time.perf_counter() - t0
    median = sorted(times)[len(times) // 2]
    print(json.dumps({"fps": frames / dt, "median_fps": 1.0 / median, "frames": frames}))


if __name__ == "__main__":
    main()
