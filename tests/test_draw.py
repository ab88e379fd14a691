"""``ex.draw``: pictures of graphs and compiled functions, with and without Graphviz; the
notebook views; NumPy's functions on a symbolic tensor say what to use instead."""

import importlib
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import exprc as ex
from exprc.graph import ancestors, toposort

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"
HAS_DOT = shutil.which("dot") is not None


@pytest.fixture(scope="module")
def w5():
    """The W5 training step (a 784-256-10 MLP's SGD step), as benchmarks/bench_training.py builds it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        bench = importlib.import_module("bench_training")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    _, _, params = bench.problem()
    return bench.exprc_step(params)


def _boxes(svg):
    """``{id: (x0, y0, x1, y1)}`` of every node box in ``svg`` (exprc's rects or Graphviz's polygons)."""
    root = ET.fromstring(svg)
    boxes = {}
    for g in root.iter(f"{SVG}g"):
        if "node" not in g.get("class", "").split():
            continue
        rect = g.find(f".//{SVG}rect")
        if rect is not None:
            x, y = float(rect.get("x")), float(rect.get("y"))
            boxes[g.get("id")] = (x, y, x + float(rect.get("width")), y + float(rect.get("height")))
        else:
            # Graphviz draws a rounded box as a path, a plain one as a polygon.
            shape = next(e for e in g.iter() if e.tag in (f"{SVG}path", f"{SVG}polygon"))
            points = re.findall(r"(-?[\d.]+),(-?[\d.]+)", shape.get("d") or shape.get("points"))
            xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
            boxes[g.get("id")] = (min(xs), min(ys), max(xs), max(ys))
    return boxes


def _clusters(svg):
    root = ET.fromstring(svg)
    return {g.get("id") for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"}


def _frames(svg):
    """``{kernel: (x0, y0, x1, y1)}`` of the cluster frames exprc draws."""
    frames = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if g.get("class") == "cluster":
            r = g.find(f"{SVG}rect")
            x, y = float(r.get("x")), float(r.get("y"))
            frames[g.get("id")] = (x, y, x + float(r.get("width")), y + float(r.get("height")))
    return frames


def _overlapping(boxes):
    items = sorted(boxes.items(), key=lambda kv: kv[1])
    return [
        (a, b)
        for i, (a, (ax0, ay0, ax1, ay1)) in enumerate(items)
        for b, (bx0, by0, bx1, by1) in items[i + 1 :]
        if ax0 < bx1 - 0.5 and bx0 < ax1 - 0.5 and ay0 < by1 - 0.5 and by0 < ay1 - 0.5
    ]


def _check_w5_picture(f, svg):
    roots = f.outputs + [e for _, e in f.updates]
    nodes = toposort(roots)
    leaves = [v for v in ancestors(roots) if v.owner is None]
    boxes = _boxes(svg)
    assert len(boxes) == len(nodes) + len(leaves) + len(f.outputs)
    assert not _overlapping(boxes)
    kernels = {k.name for k in f._program.program.kernels}
    assert len(kernels) > 5 and _clusters(svg) == kernels


def test_w5_step_without_graphviz(w5, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found
    picture = ex.draw(w5, expand=True)
    _check_w5_picture(w5, picture.svg)
    # exprc's layout also keeps the kernels' frames apart, each around its own boxes only.
    frames, boxes = _frames(picture.svg), _boxes(picture.svg)
    assert not _overlapping(frames)
    for name, (x0, y0, x1, y1) in frames.items():
        inside = {i for i, (a, b, c, d) in boxes.items() if x0 <= a and c <= x1 and y0 <= b and d <= y1}
        assert inside == {i for i in picture.nodes if picture._boxes[i].cluster == name}
    root = ET.fromstring(picture.svg)
    titles = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if "node" in g.get("class").split()]
    # Every tooltip: dtype, static shape, then the infix text.
    assert all(re.fullmatch(r"(bool|u?int\d+|float\d+) \([^)]*\)( weak)?\n.+", t, re.S) for t in titles), titles
    shared = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node shared"]
    assert len(shared) == 4
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "update"]) == 4
    library = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node library"]
    assert {g.find(f"{SVG}title").text.splitlines()[1].count("@") >= 1 for g in library} == {True}
    with pytest.raises(RuntimeError, match="Graphviz's `dot`"):
        picture.save(tmp_path / "w5.png")
    with pytest.raises(RuntimeError, match="Graphviz's `dot`"):
        ex.draw(w5, layout="dot")


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` is not on the PATH")
def test_w5_step_laid_out_by_graphviz(w5, tmp_path):
    picture = ex.draw(w5, expand=True, layout="dot")
    _check_w5_picture(w5, picture.svg)
    titles = [
        g.find(f"{SVG}title").text for g in ET.fromstring(picture.svg).iter(f"{SVG}g") if g.get("class") == "node"
    ]
    assert len(titles) == len(picture.nodes) and all(re.match(r"(bool|u?int\d+|float\d+) \(", t) for t in titles)
    assert picture.save(tmp_path / "w5.png").read_bytes().startswith(b"\x89PNG")


def test_dot_text_names_every_box_and_kernel(w5):
    picture = ex.draw(w5, expand=True)
    dot = picture.dot
    assert dot.startswith("digraph exprc {") and dot.rstrip().endswith("}")
    assert {f'subgraph "cluster_{k}"' for k in picture.clusters} <= set(re.findall(r'subgraph "cluster_\w+"', dot))
    assert set(re.findall(r"^\s*(n\d+) \[id=", dot, re.M)) == set(picture.nodes)
    assert dot.count("constraint=false") == 4


def test_long_elementwise_chains_fold_into_one_box_unless_expanded():
    x = ex.vector("x")
    y = ex.exp(ex.sin(ex.cos(ex.tanh(ex.sqrt(ex.abs(x))))))
    folded = ex.draw(y)
    assert len(folded.nodes) == 3  # x, the six ops, the output
    assert "6 elementwise ops" in folded.svg
    chain = ET.fromstring(folded.svg).find(f".//{SVG}g[@data-nodes]")
    assert len(chain.get("data-nodes").split()) == 6
    expanded = ex.draw(y, expand=True)
    assert len(expanded.nodes) == 8 and not _overlapping(_boxes(expanded.svg))
    assert len(ex.draw(y, chain=7).nodes) == 8


def test_save_writes_svg_and_dot_and_refuses_other_suffixes(tmp_path):
    x = ex.matrix("x")
    picture = ex.draw([x.sum(axis=0), ex.exp(x)])
    ET.fromstring(picture.save(tmp_path / "g.svg").read_text())
    assert picture.save(tmp_path / "g.dot").read_text() == picture.dot
    with pytest.raises(ValueError, match=r"\.svg, \.dot, \.png or \.pdf"):
        picture.save(tmp_path / "g.txt")
    with pytest.raises(TypeError, match="expected a variable"):
        ex.draw(3)
    with pytest.raises(ValueError, match="layout must be"):
        ex.draw(x, layout="neato")


def test_a_function_on_the_numpy_backend_has_no_clusters():
    x = ex.vector("x")
    f = ex.function([x], ex.exp(x).sum(), backend="numpy")
    picture = ex.draw(f)
    assert picture.clusters == [] and len(_boxes(picture.svg)) == 4


def test_notebook_views_are_wellformed_and_repr_is_unchanged(w5):
    x = ex.matrix("x")
    y = ex.exp(-(x**2)).sum(axis=1)
    assert repr(y) == "<TensorVariable exp(-x ** 2).sum(axis=1) : float64 (?,)>"
    view = ET.fromstring(y._repr_html_())
    assert view.tag == "div" and [c.text for c in view.findall("code")] == ["exp(-x ** 2).sum(axis=1)", "float64 (?,)"]
    assert view.find("details/summary").text == "graph" and view.find(f"details/{SVG}svg") is not None
    f = ex.function([x], y)
    view = ET.fromstring(f._repr_html_())
    assert view.findall("code")[0].text.startswith("exprc.Function (x)")
    assert _clusters(ET.tostring(view.find(f"details/{SVG}svg")).decode()) == {
        k.name for k in f._program.program.kernels
    }
    assert repr(f) == f"<exprc.Function (x) -> [{str(f.outputs[0])!r}]>"
    assert ET.fromstring(w5._repr_html_()).find(f"details/{SVG}svg") is not None
    assert ET.fromstring(ex.draw(y)._repr_svg_()).tag == f"{SVG}svg"
    deep = x
    for _ in range(600):
        deep = ex.sin(deep) + ex.cos(deep)  # no chain to fold: each value has two readers
    assert "too many to show here" in ET.fromstring(deep._repr_html_()).find("details/p").text


def test_numpy_functions_on_a_symbolic_tensor_say_what_to_use():
    x = ex.vector("x")
    with pytest.raises(
        TypeError, match=r"np\.sum does not take a symbolic tensor \(x\); use ex\.sum\(x\) or x\.sum\(\)"
    ):
        np.sum(x)
    with pytest.raises(TypeError, match=r"use ex\.mean\(x\) or x\.mean\(\)"):
        np.mean(x)
    # The functions that worked on a symbolic tensor still do.
    assert str(np.transpose(ex.matrix("m"))) == "m.T"
