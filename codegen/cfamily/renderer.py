"""What the C and CUDA renderers share: the packed argument layout of a kernel, the
line writer and comments, and :class:`KernelRenderer`, the walk over a kernel's expressions
(names, levels, header comment) that each renderer's loops build on."""

from exprc.codegen.cfamily.formulas import c_literal, dtype_class
from exprc.codegen.ir import kernel as ir

INDENT = "    "


def arg_layout(kernel):
    """The packed argument array of ``kernel``: a list of ``(what, count)`` in order.

    >>> from exprc.codegen.ir import kernel as ir
    >>> x = ir.Buffer("x", "float64", 2); s = ir.Buffer("s", "float64", 0)
    >>> arg_layout(ir.Kernel("k", 2, (x, s), ()))
    [('shape', 2), ('contiguous', 1), ('x', 1), ('x strides', 2), ('s', 1)]
    """
    layout = [("shape", kernel.ndim), ("contiguous", 1)]
    for b in kernel.buffers:
        layout.append((b.name, 1))
        if b.ndim:
            layout.append((f"{b.name} strides", kernel.ndim))
    return layout


def join(parts):
    """Parts of a source file, one blank line between them."""
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def loop_dtype(call):
    """The dtype that picks a call's formula: its inputs' (its values' for ``where``)."""
    return call.dtype if call.op == "where" else call.args[0].dtype


def all_exprs(kernel):
    """Every expression of ``kernel``, each once, arguments before their users."""
    return ir.walk(kernel.roots)


def block_comment(lines):
    return "\n".join(["/*"] + [f" * {line}".rstrip() for line in lines] + [" */"])


def comment(text):
    text = text.replace("*/", "* /")
    return f"  /* {text} */" if text else ""


class Writer:
    """Lines of code, indented by the depth of the blocks open."""

    def __init__(self):
        self.lines, self.depth = [], 0

    def line(self, text=""):
        self.lines.append(INDENT * self.depth + text if text else "")

    def open(self, text):
        self.line(text + " {")
        self.depth += 1

    def close(self, text="}"):
        self.depth -= 1
        self.line(text)


class KernelRenderer:
    """A kernel's expressions as statements: their names, the loop level each is computed
    at, and the header comment. Subclasses write the statements (``statement``) and loops."""

    def __init__(self, kernel, name=None):
        self.k = kernel
        self.fn = name or kernel.name  # the C name of the entry point
        self.d = kernel.ndim
        self.red = kernel.reduction
        self.kept = self.d - (self.red.naxes if self.red else 0)
        self.names = {}
        self.counter = 0

    # --- naming and levels ------------------------------------------------------------
    def name(self, expr):
        if id(expr) not in self.names:
            if isinstance(expr, ir.Load):
                base = f"{expr.buffer.name}_v"
            elif isinstance(expr, ir.Const):
                base = f"c{self.counter}"
            elif isinstance(expr, ir.Acc):
                base = "result"
            else:
                base = f"v{self.counter}"
            self.counter += 1
            self.names[id(expr)] = base
        return self.names[id(expr)]

    def level(self, expr, memo):
        """0: invariant; 1: per kept index before the reduction; 2: per element; 3: after the reduction."""
        if id(expr) in memo:
            return memo[id(expr)]
        if isinstance(expr, ir.Const):
            lv = 0
        elif isinstance(expr, ir.Load):
            lv = 0 if expr.buffer.ndim == 0 else (1 if expr.buffer.outer else 2)
        elif isinstance(expr, ir.Acc):
            lv = 3
        else:
            lv = max((self.level(a, memo) for a in expr.args), default=0)
        memo[id(expr)] = lv
        return lv

    def emit(self, w, exprs, index):
        for expr in exprs:
            text = self.statement(expr, index)
            # A cast of a node's result shows the node's comment once, on the first line.
            if isinstance(expr, ir.Cast) and expr.note and expr.note == expr.arg.note:
                text = text[: text.rindex("  /*")]
            w.line(text)

    def invariants(self, w, exprs):
        if exprs:
            w.line("/* values that are the same for every element */")
            self.emit(w, exprs, None)

    def header(self):
        k = self.k
        lines = [k.name, ""]
        if k.note:
            lines.append(f"computes {k.note}")
        if len(k.computes) > 1:
            lines.append("fusing:")
            lines.extend(f"    {c}" for c in k.computes)
        axes = ", ".join(f"n{a}" for a in range(self.d)) or "none (0-d)"
        lines.append(f"index space: {axes}")
        if self.red is not None:
            reduced = ", ".join(f"n{a}" for a in range(self.kept, self.d))
            lines.append(f"reduction: {self.red.op} over {reduced}, accumulating in {self.red.acc_dtype}")
        for b in k.buffers:
            role = "writes" if b.output else "reads "
            shape = "scalar" if b.ndim == 0 else ("indexed by kept axes" if b.outer else "indexed by all axes")
            lines.append(f"{role} {b.name}: {b.dtype}, {shape}")
        lines = [line.replace("*/", "* /") for line in lines]
        return ["/* " + lines[0] + " */"] if len(lines) == 2 else block_comment(lines).splitlines()

    def strided_index(self, axes, unit_last=False):
        """A buffer's element offset at indices ``i{a}`` of ``axes``; with ``unit_last``, for
        buffers known to have stride 1 on the last axis (a test the loops make)."""
        last = self.d - 1

        def index(buffer):
            used = range(self.kept) if buffer.outer else axes
            terms = [f"i{a}" if unit_last and a == last else f"i{a} * {buffer.name}_s{a}" for a in used]
            return " + ".join(terms) or "0"

        return index

    def initial(self, red):
        if red.initial is not None:
            return c_literal(red.initial, red.acc_dtype)
        kind = dtype_class(red.acc_dtype)
        if red.op in ("add", "or"):
            return "0"
        if red.op in ("mul", "and"):
            return "1"
        bits = 8 * {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4}.get(
            red.acc_dtype, 8
        )
        if red.op == "max":
            return {"f": "-INFINITY", "i": f"INT{bits}_MIN", "u": "0", "b": "0"}[kind]
        return {"f": "INFINITY", "i": f"INT{bits}_MAX", "u": f"UINT{bits}_MAX", "b": "1"}[kind]
