"""Imports run one way, down the pipeline, and no modules import each other in a circle.

Every module of ``exprc`` and of ``codegen`` (installed as ``exprc.codegen``) is
parsed, imports inside functions included. The allowed directions are in
:data:`MAY_IMPORT`; ``docs/internals/pipeline.md`` explains them.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Layers of the front end: the graph and what builds, rewrites and differentiates it.
FRONT_END = (
    "exprc.dtypes",
    "exprc.shapes",
    "exprc.graph",
    "exprc.printing",
    "exprc.tensor",
    "exprc.shared",
    "exprc.ops",
    "exprc.grad",
    "exprc.rewrite",
    "exprc.check",
    "exprc.version",
    "exprc.backends",
    "exprc.reference",
    "exprc.graph_format",
    # public namespaces made of ops: ex.nnet, ex.random, ex.linalg
    "exprc.nnet",
    "exprc.random",
    "exprc.linalg",
    # forward-mode products (Rop) and Lop, beside exprc.grad
    "exprc.forward",
    # settings read when graphs are built (floatX)
    "exprc.config",
    # ex.In: function inputs with defaults
    "exprc.inputs",
)
IR = ("exprc.codegen.ir",)
CFAMILY = ("exprc.codegen.cfamily",)
CACHE = ("exprc.codegen.cache",)

#: For a module (the longest prefix that matches its name): the prefixes it may import.
MAY_IMPORT = {
    # the front end never imports a back end
    **{layer: FRONT_END for layer in FRONT_END},
    # function reaches back ends through exprc.backends; the rewritten-graph memo uses the cache
    "exprc.function": FRONT_END + ("exprc.remembered",),
    # checking a gradient compiles it
    "exprc.gradcheck": FRONT_END + ("exprc.function",),
    # pictures of graphs and of compiled functions (their kernels as clusters)
    "exprc.draw": FRONT_END + ("exprc.function",),
    "exprc.remembered": FRONT_END + CACHE,
    # commands and facades over one package of codegen each
    "exprc.cache": CACHE,
    "exprc.cuda": FRONT_END + ("exprc.codegen.cuda",),
    "exprc.threads": ("exprc.codegen.c",),
    "exprc.demo": ("exprc",),
    # layers for programs written for other libraries, over exprc's public API
    "exprc.compat": ("exprc",),
    "exprc": ("exprc.",),
    "exprc.codegen": (),
    # lowering knows the graph and the ops, no renderer
    "exprc.codegen.ir": FRONT_END + IR,
    "exprc.codegen.cfamily": FRONT_END + IR + CFAMILY,
    # the back ends never import each other
    "exprc.codegen.c": FRONT_END + IR + CFAMILY + CACHE + ("exprc.codegen.c",),
    "exprc.codegen.cuda": FRONT_END + IR + CFAMILY + CACHE + ("exprc.function", "exprc.codegen.cuda"),
    # the cache needs only the standard library
    "exprc.codegen.cache": CACHE,
}


def _modules():
    """``{dotted name: path}`` for every module, by its installed name."""
    found = {}
    for folder, package in ((ROOT / "exprc", "exprc"), (ROOT / "codegen", "exprc.codegen")):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _imports(name, source=None, modules=MODULES):
    """``[(line, imported module)]`` for every import of an exprc module in module ``name``."""
    path = modules[name]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                # `from package import module` imports the module; `from module import name` the module
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if sub in modules else target))
    return [(line, target) for line, target in found if target.split(".")[0] in ("exprc", "codegen")]


#: Rules for a package's ``__init__`` alone, not for the modules inside it.
PACKAGE_ONLY = {"exprc", "exprc.codegen"}


def _rule(name):
    """The rule for module ``name``: the longest prefix of it in :data:`MAY_IMPORT`, or None."""
    matches = [p for p in MAY_IMPORT if name == p or (p not in PACKAGE_ONLY and name.startswith(p + "."))]
    return max(matches, key=len, default=None)


def _allowed(target, prefixes):
    return any(target == p or target.startswith(p if p.endswith(".") else p + ".") for p in prefixes)


def test_every_module_has_a_rule():
    """A new module must be placed in a layer of :data:`MAY_IMPORT`."""
    assert [name for name in MODULES if _rule(name) is None] == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_one_way(name):
    rule = _rule(name)
    wrong = [
        f"line {line}: {target}"
        for line, target in _imports(name)
        if target.split(".")[0] == "codegen" or not _allowed(target, MAY_IMPORT[rule] + (name,))
    ]
    assert not wrong, f"{name} (a {rule} module) may import only {MAY_IMPORT[rule]}; it imports " + ", ".join(wrong)


def _import_graph(sources=None):
    """``{module: [modules it imports]}``, from the files or from ``sources`` ``{name: text}``."""
    modules = MODULES if sources is None else {name: Path(f"{name}.py") for name in sources}
    return {
        name: sorted({t for _, t in _imports(name, sources and sources[name], modules) if t in modules and t != name})
        for name in modules
    }


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return cycles


def test_no_import_cycles():
    cycles = _cycles(_import_graph())
    assert not cycles, "modules that import each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_can_fail():
    """Two modules importing each other (one inside a function) are a cycle; a chain is not;
    a relative import is read as the module it names."""
    sources = {
        "exprc.a": "from . import b\n",
        "exprc.b": "def f():\n    from .a import x\n",
        "exprc.c": "import exprc.a\n",
    }
    assert _import_graph(sources) == {"exprc.a": ["exprc.b"], "exprc.b": ["exprc.a"], "exprc.c": ["exprc.a"]}
    assert _cycles(_import_graph(sources)) == [["exprc.a", "exprc.b"]]
    assert not _allowed("exprc.codegen.c.build", MAY_IMPORT[_rule("exprc.codegen.cuda.build")])
    assert not _allowed("exprc.codegen.cache.disk", MAY_IMPORT[_rule("exprc.rewrite.engine")])
