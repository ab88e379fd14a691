"""Pictures of graphs and of compiled functions: :func:`draw`.

exprc writes the DOT text itself and lays the picture out itself (layers by
longest path, a few barycenter sweeps against crossings), so no Graphviz is
needed; with Graphviz's ``dot`` on the PATH, ``layout="dot"`` lays it out instead.
"""

from __future__ import annotations

import heapq
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Literal

from . import printing
from .graph import Constant, ancestors, toposort
from .printing import infix_texts, to_infix
from .shared import SharedVariable

#: Fill and outline of each kind of box.
STYLES = {
    "input": ("#cfe2f3", "#3d6a99"),
    "shared": ("#fce5cd", "#b45f06"),
    "constant": ("#eeeeee", "#888888"),
    "output": ("#d9ead3", "#38761d"),
    "op": ("#ffffff", "#444444"),
    "numpy": ("#fff2cc", "#bf9000"),
    "library": ("#ead1dc", "#741b47"),
    "chain": ("#f3f3f3", "#444444"),
}
#: Matrix products run by a library (BLAS) when a step runs them through NumPy.
LIBRARY_OPS = {"MatMul", "TensorDot"}
BOX_HEIGHT, LAYER_GAP, BOX_GAP, CHAR_WIDTH = 28, 64, 18, 7


@dataclass
class _Box:
    id: str
    label: str
    kind: str
    tooltip: str
    cluster: str | None = None
    members: list = field(default_factory=list)

    @property
    def width(self) -> int:
        return max(48, CHAR_WIDTH * len(self.label) + 16)


def _lowered_steps(function) -> list:
    """The steps of a compiled function's lowered program (kernels and NumPy steps), or []
    for a back end that runs node by node."""
    program = getattr(function, "_program", None)
    while hasattr(program, "program"):
        program = program.program
    steps = getattr(program, "steps", None)
    return (
        list(steps)
        if isinstance(steps, list) and all(hasattr(s, "kernel") or hasattr(s, "node") for s in steps)
        else []
    )


def _placement(steps) -> dict:
    """``{Apply: (cluster name or None, kind)}``: each kernel's nodes in its cluster (a node
    recomputed by several kernels in the one that stores it, else the first), NumPy steps marked."""
    placed: dict = {}
    kernels = [s for s in steps if hasattr(s, "kernel")]

    def nodes_of(step):
        return list(step.nodes) or [n for part in getattr(step, "parts", ()) for n in part.nodes]

    for step in kernels:
        for _, var in step.outputs:
            if var.owner is not None and var.owner in nodes_of(step):
                placed.setdefault(var.owner, (step.kernel.name, "op"))
    for step in kernels:
        for node in nodes_of(step):
            placed.setdefault(node, (step.kernel.name, "op"))
    for step in steps:
        if hasattr(step, "node"):
            kind = "library" if type(step.node.op).__name__ in LIBRARY_OPS else "numpy"
            placed.setdefault(step.node, (None, kind))
    return placed


class Picture:
    """A picture of a graph: ``.dot`` (DOT text), ``.svg``, ``save(path)``; Jupyter shows it.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> picture = ex.draw(ex.exp(x) + 1)
    >>> picture.svg.startswith("<svg")
    True
    >>> print(picture.dot.splitlines()[0])
    digraph exprc {
    """

    def __init__(self, boxes, edges, updates, layout):
        self._boxes: dict[str, _Box] = boxes
        self._edges: list[tuple[str, str]] = edges
        self._updates: list[tuple[str, str]] = updates
        self.layout = layout
        self._svg: str | None = None

    @property
    def nodes(self) -> list[str]:
        """The ids of the boxes drawn (``n0``, ``n1``, ...), as in the SVG and the DOT text."""
        return list(self._boxes)

    @property
    def clusters(self) -> list[str]:
        """The kernels drawn as clusters, by name."""
        return list(dict.fromkeys(b.cluster for b in self._boxes.values() if b.cluster))

    @property
    def dot(self) -> str:
        """The picture as Graphviz DOT text."""
        lines = [
            "digraph exprc {",
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
            '  edge [color="#666666", arrowsize=0.6];',
        ]

        def node_line(box, indent):
            fill, line = STYLES[box.kind]
            extra = ", peripheries=2" if box.kind in ("numpy", "library") else ""
            return (
                f'{indent}{box.id} [id="{box.id}", label={_quote(box.label)}, tooltip={_quote(box.tooltip)}, '
                f'fillcolor="{fill}", color="{line}"{extra}];'
            )

        for name in self.clusters:
            lines.append(f'  subgraph "cluster_{name}" {{')
            lines.append(
                f'    id="{name}"; label={_quote("kernel " + name)}; style=dashed; color="#3d6a99"; fontsize=10;'
            )
            lines += [node_line(b, "    ") for b in self._boxes.values() if b.cluster == name]
            lines.append("  }")
        lines += [node_line(b, "  ") for b in self._boxes.values() if not b.cluster]
        lines += [f"  {a} -> {b};" for a, b in self._edges]
        lines += [
            f'  {a} -> {b} [style=dashed, color="#b45f06", constraint=false, label="update", fontsize=9];'
            for a, b in self._updates
        ]
        lines.append("}")
        return "\n".join(lines) + "\n"

    @property
    def svg(self) -> str:
        """The picture as SVG text, laid out by exprc (or by Graphviz with ``layout="dot"``)."""
        if self._svg is None:
            if self.layout == "dot":
                text = subprocess.run(
                    [_graphviz("layout='dot'"), "-Tsvg"], input=self.dot, capture_output=True, text=True, check=True
                ).stdout
                # Graphviz titles a node by its name; the tooltip belongs there instead.
                self._svg = re.sub(
                    r'(<g id="(n\d+)" class="node">\s*<title>)[^<]*(</title>)',
                    lambda m: m[1] + escape(self._boxes[m[2]].tooltip) + m[3],
                    text[text.index("<svg") :],
                )
            else:
                self._svg = self._own_svg()
        return self._svg

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str | Path) -> Path:
        """Write the picture to ``path``: ``.svg`` or ``.dot``; ``.png`` or ``.pdf`` with Graphviz."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".svg":
            path.write_text(self.svg)
        elif suffix == ".dot":
            path.write_text(self.dot)
        elif suffix in (".png", ".pdf"):
            data = subprocess.run(
                [_graphviz(f"saving {path.name}"), f"-T{suffix[1:]}"],
                input=self.dot.encode(),
                capture_output=True,
                check=True,
            ).stdout
            path.write_bytes(data)
        else:
            raise ValueError(f"save({str(path)!r}): expected a path ending in .svg, .dot, .png or .pdf")
        return path

    # --- exprc's own layout ---------------------------------------------------------

    def _place(self) -> tuple[dict[str, tuple[float, float]], dict[str, tuple], float, float]:
        """Box corners, cluster frames, width and height. A kernel's boxes form one block,
        laid out inside on rows of their own; blocks and the other boxes are layered by longest
        path and ordered by two barycenter sweeps, so that neither boxes nor frames overlap."""
        boxes = self._boxes
        unit = {i: b.cluster or i for i, b in boxes.items()}
        members: dict[str, list[str]] = {}
        for i in boxes:
            members.setdefault(unit[i], []).append(i)
        into: dict[str, list[str]] = {i: [] for i in boxes}
        out: dict[str, list[str]] = {i: [] for i in boxes}
        for a, b in self._edges:
            into[b].append(a)
            out[a].append(b)
        # Inside a block: rows by longest path over its own edges (boxes come after those they read).
        sub: dict[str, int] = {}
        for i in boxes:
            sub[i] = 1 + max((sub[a] for a in into[i] if unit[a] == unit[i]), default=-1)
        # The blocks in dependency order (a cycle, possible where a kernel recomputes what a
        # later one stores, is broken at the earliest block), each a layer below those it reads.
        position = {i: k for k, i in enumerate(boxes)}
        first = {u: min(position[m] for m in ms) for u, ms in members.items()}
        preds = {u: {unit[a] for m in ms for a in into[m]} - {u} for u, ms in members.items()}
        succs: dict[str, set[str]] = {u: set() for u in members}
        for u, ps in preds.items():
            for p in ps:
                succs[p].add(u)
        missing = {u: len(ps) for u, ps in preds.items()}
        ready = [(first[u], u) for u, n in missing.items() if n == 0]
        heapq.heapify(ready)
        stuck = sorted(members, key=first.__getitem__)  # the blocks in order, to break a cycle
        layer: dict[str, int] = {}
        while len(layer) < len(members):
            if ready:
                u = heapq.heappop(ready)[1]
                if u in layer:
                    continue
            else:
                u = next(v for v in stuck if v not in layer)
            layer[u] = 1 + max((layer[p] for p in preds[u] if p in layer), default=-1)
            for v in succs[u]:
                missing[v] -= 1
                if missing[v] == 0 and v not in layer:
                    heapq.heappush(ready, (first[v], v))
        # A leaf sits just above its first reader, not at the top of a tall picture.
        for u, ms in members.items():
            if len(ms) == 1 and not into[ms[0]] and out[ms[0]]:
                layer[u] = max(min(layer[unit[b]] for b in out[ms[0]]) - 1, 0)
        # Each block in its own coordinates: sub-rows centred, ordered by the barycenter of what they read.
        local: dict[str, tuple[float, float]] = {}
        size: dict[str, tuple[float, float]] = {}
        for u, ms in members.items():
            rows: list[list[str]] = [[] for _ in range(max(sub[m] for m in ms) + 1)]
            for m in ms:
                rows[sub[m]].append(m)
            width = max(sum(boxes[m].width for m in row) + BOX_GAP * (len(row) - 1) for row in rows)
            for r, row in enumerate(rows):
                near = {m: [local[a][0] + boxes[a].width / 2 for a in into[m] if a in local] for m in row}
                row.sort(key=lambda m: sum(near[m]) / len(near[m]) if near[m] else 0.0)
                x = (width - sum(boxes[m].width for m in row) - BOX_GAP * (len(row) - 1)) / 2
                for m in row:
                    local[m] = (x, r * (BOX_HEIGHT + BOX_GAP + 8))
                    x += boxes[m].width + BOX_GAP
            size[u] = (width, len(rows) * (BOX_HEIGHT + BOX_GAP + 8) - BOX_GAP - 8)
        pad, label, margin, unit_gap = 8, 16, 24, 2 * 8 + BOX_GAP
        rows_u: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
        for u in members:
            rows_u[layer[u]].append(u)
        clusters = set(self.clusters)
        framed = {u: pad if u in clusters else 0 for u in members}
        row_width = [sum(size[u][0] + 2 * framed[u] for u in row) + unit_gap * max(len(row) - 1, 0) for row in rows_u]
        total = max(row_width, default=0) + 2 * margin
        tops, y = [], margin
        for row in rows_u:
            tops.append(y + label)
            y += label + max((size[u][1] + 2 * framed[u] for u in row), default=0) + LAYER_GAP
        height = y - LAYER_GAP + margin
        place: dict[str, tuple[float, float]] = {}
        for sweep in range(2):
            for r, row in enumerate(rows_u):

                def center(u):
                    # First sweep: the blocks above; second: above and below, as first placed.
                    xs = [
                        place[j][0] + boxes[j].width / 2
                        for m in members[u]
                        for j in (into[m] + out[m] if sweep else into[m])
                        if j in place and unit[j] != u
                    ]
                    return sum(xs) / len(xs) if xs else total / 2

                row.sort(key=center)
                x = (total - row_width[r]) / 2
                for u in row:
                    x += framed[u]
                    for m in members[u]:
                        place[m] = (x + local[m][0], tops[r] + framed[u] + local[m][1])
                    x += size[u][0] + framed[u] + unit_gap
        frames = {}
        for name in self.clusters:
            ms = members[name]
            x0 = min(place[m][0] - local[m][0] for m in ms) - pad
            y0 = min(place[m][1] - local[m][1] for m in ms) - pad
            frames[name] = (x0, y0, x0 + size[name][0] + 2 * pad, y0 + size[name][1] + 2 * pad)
        return place, frames, total, height

    def _own_svg(self) -> str:
        place, frames, total, height = self._place()
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{total:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {total:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#666666"/></marker></defs>',
        ]
        for name, (x0, y0, x1, y1) in frames.items():
            out.append(
                f'<g class="cluster" id="{escape(name)}"><title>kernel {escape(name)}</title>'
                f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="6" '
                f'fill="none" stroke="#3d6a99" stroke-dasharray="4 3"/>'
                f'<text x="{x0 + 2:.1f}" y="{y0 - 4:.1f}" font-size="9" fill="#3d6a99">{escape(name)}</text></g>'
            )
        for kind, pairs in (("edge", self._edges), ("update", self._updates)):
            for a, b in pairs:
                (ax, ay), (bx, by) = place[a], place[b]
                ax, bx = ax + self._boxes[a].width / 2, bx + self._boxes[b].width / 2
                if kind == "edge":
                    y0, y1 = ay + BOX_HEIGHT, by
                    d = f"M {ax:.1f} {y0:.1f} C {ax:.1f} {y0 + 30:.1f} {bx:.1f} {y1 - 30:.1f} {bx:.1f} {y1:.1f}"
                    out.append(f'<path class="edge" d="{d}" fill="none" stroke="#666666" marker-end="url(#arrow)"/>')
                else:
                    # An update writes a value back to its shared variable, further up: drawn beside the boxes.
                    x0, x1 = ax + self._boxes[a].width / 2, bx + self._boxes[b].width / 2
                    ym0, ym1 = ay + BOX_HEIGHT / 2, by + BOX_HEIGHT / 2
                    side = max(x0, x1) + 40
                    d = f"M {x0:.1f} {ym0:.1f} C {side:.1f} {ym0:.1f} {side:.1f} {ym1:.1f} {x1:.1f} {ym1:.1f}"
                    out.append(
                        f'<path class="update" d="{d}" fill="none" stroke="#b45f06" stroke-dasharray="5 3" '
                        f'marker-end="url(#arrow)"><title>update</title></path>'
                    )
        for i, box in self._boxes.items():
            x, y = place[i]
            fill, line = STYLES[box.kind]
            dashed = ' stroke-dasharray="3 2"' if box.kind in ("numpy", "library") else ""
            members = f' data-nodes="{" ".join(box.members)}"' if box.members else ""
            out.append(
                f'<g class="node {box.kind}" id="{i}"{members}><title>{escape(box.tooltip)}</title>'
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{box.width}" height="{BOX_HEIGHT}" rx="5" '
                f'fill="{fill}" stroke="{line}"{dashed}/>'
                f'<text x="{x + box.width / 2:.1f}" y="{y + BOX_HEIGHT / 2 + 4:.1f}" '
                f'text-anchor="middle">{escape(box.label)}</text></g>'
            )
        out.append("</svg>")
        return "\n".join(out)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _graphviz(purpose: str) -> str:
    found = shutil.which("dot")
    if found is None:
        raise RuntimeError(
            f"{purpose} needs Graphviz's `dot` program, which is not on the PATH; install Graphviz "
            "(e.g. `apt-get install graphviz`), or use the SVG exprc lays out itself (.svg, .dot)"
        )
    return found


def _kind_of_leaf(var) -> str:
    if isinstance(var, SharedVariable):
        return "shared"
    return "constant" if isinstance(var, Constant) else "input"


def draw(
    obj: Any,
    *,
    layout: Literal["exprc", "dot"] = "exprc",
    expand: bool = False,
    chain: int = 4,
) -> Picture:
    """A picture of a variable, a list of variables or a compiled function.

    Inputs, shared variables, constants and outputs are styled apart; every
    box's tooltip holds its dtype, static shape and infix text. For a compiled
    function each fused kernel is a cluster around the nodes it computes, steps
    run by NumPy are dashed (library calls such as matrix products in their own
    colour) and updates are dashed arrows back to their shared variables.
    Runs of at least ``chain`` elementwise nodes, each used once, are one box
    with their count unless ``expand=True``. ``layout="dot"`` lays the SVG out
    with Graphviz.

    >>> import exprc as ex
    >>> x = ex.vector("x")
    >>> picture = ex.draw(ex.exp(-x ** 2).sum())
    >>> len(picture.nodes)
    7
    """
    if layout not in ("exprc", "dot"):
        raise ValueError(f"draw: layout must be 'exprc' or 'dot', not {layout!r}")
    if layout == "dot":
        _graphviz("draw(layout='dot')")
    updates: list = []
    steps: list = []
    if hasattr(obj, "_program"):
        outputs, updates, steps = list(obj.outputs), list(obj.updates), _lowered_steps(obj)
    elif isinstance(obj, (list, tuple)):
        outputs = list(obj)
    else:
        outputs = [obj]
    if not all(hasattr(v, "owner") and hasattr(v, "type") for v in outputs):
        raise TypeError(f"draw: expected a variable, a list of variables or a compiled function, got {obj!r}")
    roots = outputs + [e for _, e in updates]
    texts = infix_texts(roots, limit=200)
    placed = _placement(steps)
    nodes = toposort(roots)
    ids: dict = {}
    boxes: dict[str, _Box] = {}

    def tooltip(var):
        return f"{var.type}\n{texts.get(var) or to_infix(var)}"

    for var in ancestors(roots):
        if var.owner is None and var not in ids:
            ids[var] = f"n{len(boxes)}"
            boxes[ids[var]] = _Box(ids[var], to_infix(var, limit=24), _kind_of_leaf(var), tooltip(var))
    for node in nodes:
        ids[node] = f"n{len(boxes)}"
        cluster, kind = placed.get(node, (None, "op"))
        label = node.op.debug_name()
        label = label if len(label) <= 32 else label[:31] + "…"
        boxes[ids[node]] = _Box(ids[node], label, kind, tooltip(node.outputs[0]), cluster)
    rep = _chains(nodes, roots, boxes, ids, chain) if not expand else {}

    def source(var):
        return rep.get(ids[var.owner], ids[var.owner]) if var.owner is not None else ids[var]

    edges = []
    for node in nodes:
        target = rep.get(ids[node], ids[node])
        for var in node.inputs:
            if source(var) != target:
                edges.append((source(var), target))
    for k, out in enumerate(outputs):
        box = _Box(f"n{len(boxes)}", out.name or f"output {k}", "output", tooltip(out))
        boxes[box.id] = box
        edges.append((source(out), box.id))
    update_edges = [(source(expr), ids[var]) for var, expr in updates if var in ids]
    for member in rep:
        del boxes[member]
    return Picture(boxes, list(dict.fromkeys(edges)), update_edges, layout)


def _chains(nodes, roots, boxes, ids, length) -> dict[str, str]:
    """``{box id: id of the box it is folded into}`` for runs of ``length`` or more
    elementwise nodes, each used only by the next one (and in the same kernel)."""
    uses: dict = {}
    for node in nodes:
        for var in dict.fromkeys(node.inputs):
            uses.setdefault(var, []).append(node)
    kept = set(roots)

    def elemwise(node):
        return hasattr(node.op, "scalar_op") and len(node.outputs) == 1

    following = {}
    for node in nodes:
        users = uses.get(node.outputs[0], [])
        if elemwise(node) and node.outputs[0] not in kept and len(users) == 1 and elemwise(users[0]):
            if boxes[ids[node]].cluster == boxes[ids[users[0]]].cluster:
                following[node] = users[0]
    heads = set(following) - set(following.values())
    rep: dict[str, str] = {}
    for head in heads:
        run = [head]
        while run[-1] in following:
            run.append(following[run[-1]])
        if len(run) < length:
            continue
        last = boxes[ids[run[-1]]]
        last.members = [ids[n] for n in run]
        last.label = f"{len(run)} elementwise ops"
        last.kind = "chain" if last.kind == "op" else last.kind
        for node in run[:-1]:
            rep[ids[node]] = last.id
    return rep


#: A notebook view draws graphs of up to this many boxes; a larger one is left to ``ex.draw``.
NOTEBOOK_BOXES = 1500


def _notebook_svg(obj) -> str:
    picture = draw(obj)
    if len(picture.nodes) > NOTEBOOK_BOXES:
        return f"<p>{len(picture.nodes)} boxes, too many to show here: ex.draw(...).save(path) draws them.</p>"
    return picture.svg


printing.svg_drawer = _notebook_svg
