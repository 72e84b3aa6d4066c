"""A PNG of the benchmark's own numbers, with nothing but zlib and struct
(there is no plotting library on the machine).

chart(path, title, panels, y_max, line=None, subtitle=""): one panel per series set,
stacked; each panel is (label, [(name, colour, values per second)]), bars
side by side per second are drawn stacked in the order given; `line`
draws a dashed horizontal line (value, label) in every panel.  Text is a
5x7 bitmap font, lower case, digits and a little punctuation.
"""
import struct
import zlib

FONT = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    "a": ["00000", "00000", "01110", "00001", "01111", "10001", "01111"],
    "b": ["10000", "10000", "10110", "11001", "10001", "10001", "11110"],
    "c": ["00000", "00000", "01110", "10000", "10000", "10001", "01110"],
    "d": ["00001", "00001", "01101", "10011", "10001", "10001", "01111"],
    "e": ["00000", "00000", "01110", "10001", "11111", "10000", "01110"],
    "f": ["00110", "01001", "01000", "11100", "01000", "01000", "01000"],
    "g": ["00000", "01111", "10001", "10001", "01111", "00001", "01110"],
    "h": ["10000", "10000", "10110", "11001", "10001", "10001", "10001"],
    "i": ["00100", "00000", "01100", "00100", "00100", "00100", "01110"],
    "j": ["00010", "00000", "00110", "00010", "00010", "10010", "01100"],
    "k": ["10000", "10000", "10010", "10100", "11000", "10100", "10010"],
    "l": ["01100", "00100", "00100", "00100", "00100", "00100", "01110"],
    "m": ["00000", "00000", "11010", "10101", "10101", "10001", "10001"],
    "n": ["00000", "00000", "10110", "11001", "10001", "10001", "10001"],
    "o": ["00000", "00000", "01110", "10001", "10001", "10001", "01110"],
    "p": ["00000", "00000", "11110", "10001", "11110", "10000", "10000"],
    "q": ["00000", "00000", "01101", "10011", "01111", "00001", "00001"],
    "r": ["00000", "00000", "10110", "11001", "10000", "10000", "10000"],
    "s": ["00000", "00000", "01110", "10000", "01110", "00001", "11110"],
    "t": ["01000", "01000", "11100", "01000", "01000", "01001", "00110"],
    "u": ["00000", "00000", "10001", "10001", "10001", "10011", "01101"],
    "v": ["00000", "00000", "10001", "10001", "10001", "01010", "00100"],
    "w": ["00000", "00000", "10001", "10001", "10101", "10101", "01010"],
    "x": ["00000", "00000", "10001", "01010", "00100", "01010", "10001"],
    "y": ["00000", "00000", "10001", "10001", "01111", "00001", "01110"],
    "z": ["00000", "00000", "11111", "00010", "00100", "01000", "11111"],
    ".": ["00000", "00000", "00000", "00000", "00000", "01100", "01100"],
    ",": ["00000", "00000", "00000", "00000", "01100", "00100", "01000"],
    ":": ["00000", "01100", "01100", "00000", "01100", "01100", "00000"],
    "=": ["00000", "00000", "11111", "00000", "11111", "00000", "00000"],
    "/": ["00001", "00010", "00010", "00100", "01000", "01000", "10000"],
    "-": ["00000", "00000", "00000", "11111", "00000", "00000", "00000"],
    "+": ["00000", "00100", "00100", "11111", "00100", "00100", "00000"],
    "(": ["00010", "00100", "01000", "01000", "01000", "00100", "00010"],
    ")": ["01000", "00100", "00010", "00010", "00010", "00100", "01000"],
    "%": ["11000", "11001", "00010", "00100", "01000", "10011", "00011"],
    "_": ["00000", "00000", "00000", "00000", "00000", "00000", "11111"],
    " ": ["00000"] * 7,
}

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (200, 200, 200)


class Canvas:
    def __init__(self, width, height, background=WHITE):
        self.w, self.h = width, height
        self.px = bytearray(bytes(background) * (width * height))

    def dot(self, x, y, colour):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = 3 * (y * self.w + x)
            self.px[i:i + 3] = bytes(colour)

    def box(self, x0, y0, x1, y1, colour):
        """Filled, corners included."""
        for y in range(max(0, min(y0, y1)), min(self.h, max(y0, y1) + 1)):
            lo, hi = max(0, min(x0, x1)), min(self.w - 1, max(x0, x1))
            if lo <= hi:
                self.px[3 * (y * self.w + lo):3 * (y * self.w + hi + 1)] = \
                    bytes(colour) * (hi - lo + 1)

    def hline(self, x0, x1, y, colour, dash=0):
        for x in range(min(x0, x1), max(x0, x1) + 1):
            if not dash or (x // dash) % 2 == 0:
                self.dot(x, y, colour)

    def vline(self, x, y0, y1, colour):
        self.box(x, y0, x, y1, colour)

    def text(self, x, y, s, colour=BLACK, scale=1):
        """s at (x, y), its top left corner; returns the width drawn."""
        for k, ch in enumerate(s.lower()):
            rows = FONT.get(ch, FONT[" "])
            for r, bits in enumerate(rows):
                for c, bit in enumerate(bits):
                    if bit == "1":
                        self.box(x + (6 * k + c) * scale, y + r * scale,
                                 x + (6 * k + c + 1) * scale - 1,
                                 y + (r + 1) * scale - 1, colour)
        return 6 * len(s) * scale

    def png(self, path):
        def chunk(kind, data):
            c = kind + data
            return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))

        rows = b"".join(b"\x00" + bytes(self.px[3 * y * self.w:3 * (y + 1) * self.w])
                        for y in range(self.h))
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
            f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)))
            f.write(chunk(b"IDAT", zlib.compress(rows, 9)))
            f.write(chunk(b"IEND", b""))


def nice_step(top, ticks=5):
    """A round tick step for an axis going up to top."""
    raw = max(top, 1) / ticks
    mag = 10 ** (len(str(int(raw))) - 1)
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def chart(path, title, panels, y_max, line=None, x_label="seconds after the start",
          px_per_second=2, panel_height=170, subtitle=""):
    """Writes the PNG; returns its size (width, height)."""
    seconds = max(len(v) for _, series in panels for _, _, v in series)
    left, right, top, gap = 58, 16, 48 if subtitle else 34, 46
    width = left + right + seconds * px_per_second
    height = top + len(panels) * (panel_height + gap) + 10
    cv = Canvas(width, height)
    cv.text(left, 8, title, scale=2)
    if subtitle:
        cv.text(left, 28, subtitle)
    step = nice_step(y_max)
    y_top = ((y_max + step - 1) // step) * step
    for p, (label, series) in enumerate(panels):
        y0 = top + p * (panel_height + gap) + 14         # panel top
        y1 = y0 + panel_height                              # x axis
        cv.text(left, y0 - 12, label)
        # Legend, right-aligned.
        lx = width - right
        for name, colour, _ in reversed(series):
            lx -= 6 * len(name) + 16
            cv.box(lx, y0 - 12, lx + 7, y0 - 6, colour)
            cv.text(lx + 10, y0 - 12, name)
        for v in range(0, int(y_top) + 1, int(step)):
            y = y1 - int(v * panel_height / y_top)
            cv.hline(left, width - right, y, GREY, dash=0 if v == 0 else 2)
            cv.text(left - 6 - 6 * len(str(v)), y - 3, str(v))
        for s in range(seconds):
            base = 0
            for _, colour, values in series:
                v = values[s] if s < len(values) else 0
                if v <= 0:
                    continue
                ya = y1 - int(base * panel_height / y_top)
                yb = y1 - int(min(base + v, y_top) * panel_height / y_top)
                x = left + s * px_per_second
                cv.box(x, yb, x + px_per_second - 1, ya - (1 if base else 0), colour)
                base += v
        if line:
            value, text = line
            y = y1 - int(value * panel_height / y_top)
            cv.hline(left, width - right, y, BLACK, dash=4)
            tx = width - right - 6 * len(text) - 2
            cv.box(tx - 2, y - 11, width - right, y - 2, WHITE)
            cv.text(tx, y - 10, text)
        cv.vline(left, y0, y1, BLACK)
        cv.hline(left, width - right, y1, BLACK)
        tick = nice_step(seconds, 10)
        for s in range(0, seconds + 1, int(tick)):
            x = left + s * px_per_second
            cv.vline(x, y1, y1 + 3, BLACK)
            cv.text(x - 3 * len(str(s)), y1 + 6, str(s))
        cv.text(width - right - 6 * len(x_label), y1 + 16, x_label)
    cv.png(path)
    return width, height
