"""Pictures as a person sees them: headless Chromium renders the SVG of a compiled function, and
the screenshot must be the picture's size and hold the drawing (not a blank or an error page).

``.ci/run`` installs Debian's ``chromium`` where it can; elsewhere these tests skip, saying why."""

import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

import pytest

import exprc as ex

from .test_draw import w5  # noqa: F401 - the W5 training step, shared with the picture tests

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BROWSER is None, reason="no Chromium on the PATH (.ci/run installs Debian's chromium)"),
]


def _pixels(png: bytes):
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG, filters undone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = header[:4]
    assert depth == 8 and color in (2, 6), f"unexpected PNG format: depth {depth}, color type {color}"
    channels = 3 if color == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def _screenshot(svg: str, tmp_path):
    root = ET.fromstring(svg)
    width, height = (round(float(root.get(k))) for k in ("width", "height"))
    page, shot = tmp_path / "picture.svg", tmp_path / "shot.png"
    page.write_text(svg)
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--screenshot={shot}", f"--window-size={width},{height}", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return (width, height), _pixels(shot.read_bytes())


def _check_picture(svg, tmp_path):
    (width, height), (w, h, channels, rows) = _screenshot(svg, tmp_path)
    assert (w, h) == (width, height)
    inked = [y for y, row in enumerate(rows) if any(b < 200 for i, b in enumerate(row) if i % channels < 3)]
    # Boxes and edges from the top of the picture to its bottom, not a blank or a short error page.
    assert inked and inked[0] < h * 0.2 and inked[-1] > h * 0.8, (len(inked), h)
    assert len(inked) > h * 0.5
    colors = {row[i : i + 3] for row in rows[:: max(h // 200, 1)] for i in range(0, w * channels, channels * 4)}
    assert len(colors) > 8, "the picture has too few colors to be the drawing"


def test_the_w5_step_renders_in_a_browser(w5, tmp_path):  # noqa: F811 - the fixture
    _check_picture(ex.draw(w5).svg, tmp_path)


def test_an_expression_renders_in_a_browser(tmp_path):
    x = ex.matrix("x")
    _check_picture(ex.draw(ex.exp(-(x**2)).sum(axis=1) * 2).svg, tmp_path)


def test_a_scan_renders_in_a_browser(tmp_path):
    x, h0, w = ex.matrix("x"), ex.vector("h0"), ex.matrix("w")
    hs, _ = ex.scan(lambda xt, h: ex.tanh(xt + h @ w), sequences=x, outputs_info=[h0])
    f = ex.function([x, h0, w], (hs[-1] ** 2).sum())
    _check_picture(ex.draw(f).svg, tmp_path)
