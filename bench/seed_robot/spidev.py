"""Stand-in for the `spidev` C extension, for the latency bench only.

The vendor's driver (`gopigo3.py` from PyPI `gopigo3`) does
`import spidev; GPG_SPI = spidev.SpiDev(); GPG_SPI.open(0, 1)` at import and
sends every message with `GPG_SPI.xfer2(list_of_bytes)`. The bench puts this
folder first on `sys.path`, so the driver gets this module instead of the
real one and runs unchanged on a machine with no `/dev/spidev0.1`.

Each `xfer2` takes `time.time_ns()` (CLOCK_REALTIME) on entry, when the
driver hands the finished message to the bus, and writes one line
`<unix_ns> <tx hex>\\n` to the file descriptor named by the environment
variable `SPIDEV_STANDIN_FD` (if set). The line is written after the
timestamp is taken, so its cost is not part of the measured time.

Replies answer the vendor's start-up check the way a GoPiGo3 does: byte 3
is 0xA5 ("valid"), data from byte 4 (manufacturer "Dexter Industries",
board "GoPiGo3", firmware 0.3.9, which the PyPI driver 1.1.1 requires as
0.3.x). Anything else reads as zeros.
"""

import os
import time

_LOG_FD = int(os.environ.get("SPIDEV_STANDIN_FD", "-1"))

# GoPiGo3 message types (byte 1 of a message) that the start-up check reads.
_GET_MANUFACTURER, _GET_NAME, _GET_HARDWARE_VERSION, _GET_FIRMWARE_VERSION = 1, 2, 3, 4
_FIRMWARE = 3009  # shown by the driver as "0.3.9"
_HARDWARE = 3000002  # "3.0.2"


def _reply(tx):
    rx = [0] * len(tx)
    if len(tx) < 4:
        return rx
    kind = tx[1]
    if kind == _GET_MANUFACTURER:
        data = b"Dexter Industries"
    elif kind == _GET_NAME:
        data = b"GoPiGo3"
    elif kind == _GET_FIRMWARE_VERSION:
        data = _FIRMWARE.to_bytes(4, "big")
    elif kind == _GET_HARDWARE_VERSION:
        data = _HARDWARE.to_bytes(4, "big")
    else:
        data = b""
    rx[3] = 0xA5
    for i, b in enumerate(data[: max(0, len(tx) - 4)]):
        rx[4 + i] = b
    return rx


class SpiDev:
    """The subset of `spidev.SpiDev` that the vendor's driver uses."""

    def __init__(self, bus=None, device=None):
        self.max_speed_hz = 0
        self.mode = 0
        self.bits_per_word = 8
        self.bus = self.device = None
        if bus is not None:
            self.open(bus, device)

    def open(self, bus, device):
        self.bus, self.device = bus, device

    def close(self):
        pass

    def xfer2(self, data, *_speed_delay_bits):
        t = time.time_ns()
        rx = _reply(data)
        if _LOG_FD >= 0:
            line = "%d %s\n" % (t, "".join("%02x" % (b & 0xFF) for b in data))
            os.write(_LOG_FD, line.encode())
        return rx

    xfer = xfer2
