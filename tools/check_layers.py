"""Check the package's architecture rules; exit 1 and list every breach.

The rules (one line each in the output when broken):

* layers: a module imports only from its own layer or the layers below it (``LAYERS``);
* cycles: no import cycle among the package's modules, module-level or in functions;
* lazy imports: an import inside a function is kept for an optional dependency only (the
  packages in ``OPTIONAL`` and the package modules that need one, ``OPTIONAL_MODULES``);
* privates: no module imports another module's private (``_name``) names, nor reads them
  through an imported module (``module._name``);
* sizes: no module over ``MAX_MODULE_LINES`` lines, no function over ``MAX_FUNCTION_LINES``
  (its docstring and decorators included).

Run ``python tools/check_layers.py`` from the repository root (``--package DIR`` for another
tree); ``tests/test_architecture.py`` runs it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "qrnn_qiskit"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

#: bottom to top; a module may import from its own layer and every layer listed before it
LAYERS = (
    ("core",),
    ("circuits",),
    ("engine",),
    ("models",),
    ("data",),
    ("evaluation",),
    ("runners",),
    ("training",),
    ("workflows",),
    ("torch", "qml"),
    ("cli", "__main__"),
)
#: third-party packages that only an optional extra installs, or that only reaching IBM Quantum
#: needs and every command would otherwise pay to import (qiskit_ibm_runtime; requests, 0.1 s):
#: imported inside the function that needs them
OPTIONAL = ("torch", "ray", "tensorboard", "numba.cuda", "qiskit_ibm_runtime", "requests", "matplotlib", "sklearn",
            "mthree", "qiskit_machine_learning", "lightning")
#: package modules that import an optional package at their top, so callers import them lazily
#: private members of other libraries that the package reads on purpose, each with its reason
ALLOWED_PRIVATE = {
    # Qiskit documents QuantumCircuit._append as the unchecked append for builders that pass
    # CircuitInstructions on the circuit's own bits; the circuit builders use it for build speed
    "_append": "QuantumCircuit._append",
}
OPTIONAL_MODULES = (
    "qrnn_qiskit.engine.backends.cuda_kernels",  # numba.cuda
    "qrnn_qiskit.torch",  # torch: the PyTorch module
    "qrnn_qiskit.qml",  # qiskit_machine_learning: the NeuralNetwork adapter
)


@dataclass(frozen=True)
class Import:
    source: str  # importing module (dotted)
    target: str  # imported module (dotted), resolved
    names: tuple[str, ...]
    line: int
    in_function: bool


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports(path: Path, root: Path, modules: set[str]) -> Iterator[Import]:
    """Every import of the package's own modules in ``path``, resolved to module names."""
    name = module_name(path, root)
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node, in_function in _walk(tree, False):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module) if node.level else (node.module or "")
            if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                continue
            names = tuple(a.name for a in node.names)
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            plain = tuple(n for n in names if f"{base}.{n}" not in modules)
            if plain or not submodules:
                yield Import(name, base, plain, node.lineno, in_function)
            for sub in submodules:
                yield Import(name, sub, (), node.lineno, in_function)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield Import(name, alias.name, (), node.lineno, in_function)


def _walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        yield child, in_function
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, inner)


def third_party_lazy(path: Path) -> Iterator[tuple[int, str]]:
    """Imports inside functions of packages that are not optional (they belong at the top)."""
    tree = ast.parse(path.read_text(), str(path))
    for node, in_function in _walk(tree, False):
        if not in_function or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                continue
            names = [node.module or ""]
            if any(f"{names[0]}.{a.name}" == o for a in node.names for o in OPTIONAL):
                continue  # from numba import cuda: an optional submodule
        else:
            names = [a.name for a in node.names]
        for mod in names:
            if mod == PACKAGE or mod.startswith(PACKAGE + "."):
                continue
            if not any(mod == o or mod.startswith(o + ".") for o in OPTIONAL):
                yield node.lineno, mod


def layer_of(module: str) -> int:
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    if head == "__init__":
        return len(LAYERS)  # the package root: the lazy facade over everything
    for index, names in enumerate(LAYERS):
        if head in names:
            return index
    return -1


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def private_reads(path: Path, module_aliases: dict[str, str]) -> Iterator[tuple[int, str]]:
    """``alias._name`` where ``alias`` is an imported package module, and ``obj._name`` where
    ``obj`` is not ``self``/``cls`` and no ``_name`` is defined in this module (another module's
    private member)."""
    tree = ast.parse(path.read_text(), str(path))
    own = _defined_names(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in module_aliases:
            yield node.lineno, f"{module_aliases[node.value.id]}.{node.attr}"
        elif (not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")) and node.attr not in own
              and node.attr not in ALLOWED_PRIVATE):
            yield node.lineno, f"{ast.unparse(node.value)}.{node.attr}"


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines: functions, classes, assigned names and attributes, arguments."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def long_functions(path: Path) -> Iterator[tuple[int, str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES:
                yield node.lineno, node.name, length


def check(package: Path) -> list[str]:
    files = sorted(package.rglob("*.py"))
    modules = {module_name(f, package) for f in files}
    problems: list[str] = []
    edges: dict[str, set[str]] = {m: set() for m in modules}
    lazy_ok = set(OPTIONAL_MODULES)
    for f in files:
        rel = f.relative_to(package.parent)
        name = module_name(f, package)
        if layer_of(name) < 0:
            problems.append(f"{rel}: layer: {name} belongs to no layer of LAYERS")
        lines = len(f.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{rel}: size: {lines} lines (at most {MAX_MODULE_LINES})")
        for line, fn, length in long_functions(f):
            problems.append(f"{rel}:{line}: size: function {fn} has {length} lines (at most {MAX_FUNCTION_LINES})")
        for line, mod in third_party_lazy(f):
            problems.append(f"{rel}:{line}: lazy import: {mod} is no optional dependency; import it at the top")
        aliases: dict[str, str] = {}
        for imp in imports(f, package, modules):
            target = imp.target
            if target not in modules:
                problems.append(f"{rel}:{imp.line}: import: {target} is no module of the package")
                continue
            if target == name:
                continue
            edges[name].add(target)
            src_layer, dst_layer = layer_of(name), layer_of(target)
            if src_layer >= 0 and dst_layer > src_layer:
                problems.append(f"{rel}:{imp.line}: layer: {name} imports {target}, a layer above it")
            if imp.in_function and target not in lazy_ok:
                problems.append(f"{rel}:{imp.line}: lazy import: {target} inside a function (only optional "
                                "dependencies are imported there)")
            for n in imp.names:
                if n.startswith("_") and not n.startswith("__"):
                    problems.append(f"{rel}:{imp.line}: private: {name} imports {target}.{n}")
            if not imp.names:
                aliases[target.rsplit(".", 1)[-1]] = target
        for line, what in private_reads(f, aliases):
            problems.append(f"{rel}:{line}: private: {name} reads {what}")
    for comp in cycles(edges):
        problems.append(f"cycle: {' <-> '.join(comp)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default=str(Path(__file__).resolve().parent.parent / PACKAGE))
    args = parser.parse_args(argv)
    problems = check(Path(args.package))
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s) in {args.package}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
