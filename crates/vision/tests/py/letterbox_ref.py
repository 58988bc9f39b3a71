"""darknet's own letterbox_image (libdarknet.so) on given planar pixels.

usage: letterbox_ref.py W H NW NH IN.f32 OUT.f32
IN.f32: [3, H, W] float32 little-endian (values already divided by 255).
OUT.f32: the [3, NH, NW] letterboxed image.
"""
import ctypes as C
import os
import sys

LIB = os.environ.get("DARKNET_LIB", "/usr/lib/darknet/libdarknet.so")


class IMAGE(C.Structure):
    _fields_ = [("w", C.c_int), ("h", C.c_int), ("c", C.c_int), ("data", C.POINTER(C.c_float))]


def main():
    w, h, nw, nh = (int(v) for v in sys.argv[1:5])
    src, dst = sys.argv[5], sys.argv[6]
    lib = C.CDLL(LIB, C.RTLD_GLOBAL)
    lib.make_image.argtypes = [C.c_int, C.c_int, C.c_int]
    lib.make_image.restype = IMAGE
    lib.letterbox_image.argtypes = [IMAGE, C.c_int, C.c_int]
    lib.letterbox_image.restype = IMAGE
    data = open(src, "rb").read()
    assert len(data) == 3 * w * h * 4
    im = lib.make_image(w, h, 3)
    C.memmove(im.data, data, len(data))
    out = lib.letterbox_image(im, nw, nh)
    with open(dst, "wb") as f:
        f.write(C.string_at(out.data, 3 * nw * nh * 4))


if __name__ == "__main__":
    main()
