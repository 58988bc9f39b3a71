"""Reference detections from Debian's libdarknet.so (the darknet that
`darknet detector test` runs), with boxes, which the CLI does not print.

Does what darknet's test_detector does: load_image_color, letterbox_image to
the network size, network_predict, get_network_boxes(thresh, hier .5,
relative=1), do_nms_sort(.45). Prints one JSON object per image:
{"image": path, "width": W, "height": H,
 "detections": [{"class_id", "score", "x", "y", "w", "h"}]}  (x, y = box centre, pixels)

usage: darknet_ref.py CFG WEIGHTS THRESH IMAGE...
"""
import ctypes as C
import json
import os
import sys

LIB = os.environ.get("DARKNET_LIB", "/usr/lib/darknet/libdarknet.so")


class BOX(C.Structure):
    _fields_ = [("x", C.c_float), ("y", C.c_float), ("w", C.c_float), ("h", C.c_float)]


class DETECTION(C.Structure):
    _fields_ = [("bbox", BOX), ("classes", C.c_int), ("prob", C.POINTER(C.c_float)),
                ("mask", C.POINTER(C.c_float)), ("objectness", C.c_float), ("sort_class", C.c_int)]


class IMAGE(C.Structure):
    _fields_ = [("w", C.c_int), ("h", C.c_int), ("c", C.c_int), ("data", C.POINTER(C.c_float))]


def main():
    cfg, weights, thresh = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
    lib = C.CDLL(LIB, C.RTLD_GLOBAL)
    lib.load_network.argtypes = [C.c_char_p, C.c_char_p, C.c_int]
    lib.load_network.restype = C.c_void_p
    lib.load_image_color.argtypes = [C.c_char_p, C.c_int, C.c_int]
    lib.load_image_color.restype = IMAGE
    lib.letterbox_image.argtypes = [IMAGE, C.c_int, C.c_int]
    lib.letterbox_image.restype = IMAGE
    lib.network_width.argtypes = [C.c_void_p]
    lib.network_width.restype = C.c_int
    lib.network_height.argtypes = [C.c_void_p]
    lib.network_height.restype = C.c_int
    lib.network_predict.argtypes = [C.c_void_p, C.POINTER(C.c_float)]
    lib.network_predict.restype = C.POINTER(C.c_float)
    lib.get_network_boxes.argtypes = [C.c_void_p, C.c_int, C.c_int, C.c_float, C.c_float,
                                      C.POINTER(C.c_int), C.c_int, C.POINTER(C.c_int)]
    lib.get_network_boxes.restype = C.POINTER(DETECTION)
    lib.do_nms_sort.argtypes = [C.POINTER(DETECTION), C.c_int, C.c_int, C.c_float]
    lib.free_detections.argtypes = [C.POINTER(DETECTION), C.c_int]
    lib.free_image.argtypes = [IMAGE]

    net = lib.load_network(cfg, weights, 0)
    nw, nh = lib.network_width(net), lib.network_height(net)
    for path in sys.argv[4:]:
        im = lib.load_image_color(path.encode(), 0, 0)
        sized = lib.letterbox_image(im, nw, nh)
        lib.network_predict(net, sized.data)
        n = C.c_int(0)
        dets = lib.get_network_boxes(net, im.w, im.h, thresh, 0.5, None, 1, C.byref(n))
        classes = dets[0].classes if n.value else 0
        if n.value:
            lib.do_nms_sort(dets, n.value, classes, 0.45)
        out = []
        for i in range(n.value):
            d = dets[i]
            for j in range(d.classes):
                p = d.prob[j]
                if p > thresh:
                    b = d.bbox
                    out.append({"class_id": j, "score": p,
                                "x": b.x * im.w, "y": b.y * im.h, "w": b.w * im.w, "h": b.h * im.h})
        print(json.dumps({"image": path, "width": im.w, "height": im.h, "detections": out}), flush=True)
        lib.free_detections(dets, n.value)
        lib.free_image(sized)
        lib.free_image(im)


if __name__ == "__main__":
    main()
