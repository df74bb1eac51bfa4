"""The layering rules of the package, checked by reading every module's imports (ast, nothing imported).

1. Nothing under ``affectllm/`` imports ``data_engine``, ``train``, ``eval`` or ``app`` -- at any
   depth, function-level imports included: the library sits strictly below its entry points (the
   CLI names their subcommands by module string).
2. No import cycle among project modules (``affectllm``, ``data_engine``, ``train``, ``eval``,
   ``app``). What counts: *module-level* imports, i.e. those that run when the module is imported
   (top level and class bodies, inside ``try``/``if`` too, but not under ``if TYPE_CHECKING``);
   imports inside functions run later and are not edges. ``from pkg import name`` is an edge to
   ``pkg.name`` when that is a module, else to ``pkg``. The implicit import of parent packages
   (``import a.b.c`` runs ``a/__init__``) is not an edge unless a module names the package itself.
3. Every module's first statement is a docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("affectllm", "data_engine", "train", "eval")
FORBIDDEN_IN_CORE = ("data_engine", "train", "eval", "app")


def project_modules() -> dict[str, Path]:
    """module name -> file, for every project module (packages by their ``__init__``)."""
    mods = {"app": ROOT / "app.py"}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


def _absolute(node: ast.ImportFrom, module: str, is_pkg: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, path: Path, modules: dict[str, Path], module_level: bool) -> set[str]:
    """Names ``module`` imports (see module docstring for what counts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for c in child.orelse:
                    visit(ast.Module(body=[c], type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(child, module, is_pkg)
                for a in child.names:
                    out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
            visit(child)

    visit(tree)
    return out


def _top(name: str) -> str:
    return name.split(".")[0]


def test_core_never_imports_its_consumers():
    modules = project_modules()
    bad = [f"{m} imports {i}" for m, p in modules.items() if _top(m) == "affectllm"
           for i in sorted(imports(m, p, modules, module_level=False)) if _top(i) in FORBIDDEN_IN_CORE]
    assert not bad, "the library imports its entry points:\n" + "\n".join(bad)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), Tarjan's way."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
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
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_find_cycles_sees_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_project_modules():
    modules = project_modules()
    graph = {m: {i for i in imports(m, p, modules, module_level=True) if i in modules and i != m}
             for m, p in modules.items()}
    assert not find_cycles(graph)


def test_every_module_opens_with_a_docstring():
    missing = [str(p.relative_to(ROOT)) for p in project_modules().values()
               if ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert not missing, "modules without a first-line docstring: " + ", ".join(missing)


def test_top_level_of_the_library_is_the_named_few():
    allowed = {"__init__.py", "__main__.py", "cli.py", "config.py", "errors.py", "paths.py", "inference.py"}
    extra = sorted(p.name for p in (ROOT / "affectllm").glob("*.py") if p.name not in allowed)
    assert not extra, f"top-level modules beyond the named few: {extra}"
