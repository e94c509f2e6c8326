"""The package's structure: every module imports on its own, no import circle among jaxclust's modules,
and nothing outside jaxclust/methods/ knows a method by name (jaxclust/methods/__init__.py's promise)."""
import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxclust"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_files() -> dict[str, Path]:
    """{module name: file} for every .py file of the jaxclust package."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_jaxclust(name: str) -> bool:
    return name == "jaxclust" or name.startswith("jaxclust.")


def imported_modules(tree: ast.AST, module: str, is_package: bool, modules) -> list[tuple[str, int]]:
    """(jaxclust module, line) for every import of a jaxclust module anywhere in `tree` (module level,
    functions, classes, `if TYPE_CHECKING:` blocks alike). `from jaxclust.pkg import name` counts as
    jaxclust.pkg.name when that is a module (in `modules`), else as jaxclust.pkg. `module` is the name of
    the parsed file (for relative imports); `is_package`: it is an __init__.py."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if is_jaxclust(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's package, one level up per extra dot
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if is_jaxclust(target):
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.append((sub if sub in modules else target, node.lineno))
    return found


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """jaxclust's explicit imports as {module: {imported modules}}, and where each edge is (file:line).
    The implicit import of a module's own parent packages (importing jaxclust.a.b runs jaxclust/__init__.py
    and jaxclust/a/__init__.py first) is no edge, nor is a module's import of itself; an explicit import
    of its package (`from jaxclust.a import NAME` in jaxclust/a/b.py, NAME no module) is one."""
    files = package_files()
    graph: dict[str, set[str]] = {name: set() for name in files}
    where: dict[tuple[str, str], str] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        for target, line in imported_modules(tree, name, path.name == "__init__.py", files):
            if target == name:
                continue
            graph[name].add(target)
            where.setdefault((name, target), f"{path.relative_to(ROOT)}:{line}")
    return graph, where


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle, as [a, b, ..., a], for every strongly connected component of `graph` that has one
    (Tarjan's algorithm; then the shortest cycle through the component's first node, by BFS)."""
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            components.append(component)

    recursion = sys.getrecursionlimit()
    sys.setrecursionlimit(max(recursion, 10 * len(nodes) + 100))
    try:
        for v in nodes:
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(recursion)

    cycles = []
    for component in components:
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        parent, frontier, end = {start: None}, [start], None
        while frontier and end is None:  # BFS inside the component back to start
            following = []
            for v in frontier:
                for w in sorted(graph.get(v, ())):
                    if w == start:
                        end = v
                        break
                    if w in component and w not in parent:
                        parent[w] = v
                        following.append(w)
                if end is not None:
                    break
            frontier = following
        path = [start]
        v = end
        while v is not None and v != start:
            path.append(v)
            v = parent[v]
        cycles.append([start] + path[:0:-1] + [start] if len(path) > 1 else [start, start])
    return sorted(cycles)


# --- a. every module imports on its own --------------------------------------------------------------


def test_every_module_imports_on_its_own():
    """One fresh interpreter per module (`python -c "import jaxclust.x.y"`), two at a time: a module that
    only works after another one was imported (a hidden import-order dependency) fails here."""
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))

    def run(name):
        return name, subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=600)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, sorted(package_files())))
    failed = [(name, r) for name, r in results if r.returncode != 0]
    report = "\n\n".join(f"{name} (exit {r.returncode}):\n" + "\n".join(r.stderr.strip().splitlines()[-12:])
                         for name, r in failed)
    assert not failed, f"{len(failed)} of {len(results)} modules fail to import on their own:\n\n{report}"


# --- b. no import circle -----------------------------------------------------------------------------


def test_cycle_finder_on_hand_made_graphs():
    acyclic = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert find_cycles(acyclic) == []
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"g"}, "g": {"f"}}
    assert find_cycles(cyclic) == [["a", "b", "c", "a"], ["e", "e"], ["f", "g", "f"]]
    # a node only reached as a target, and the shortest cycle of a component with two
    assert find_cycles({"x": {"y", "z"}, "y": {"x"}, "z": {"y"}}) == [["x", "y", "x"]]


def test_import_resolution():
    source = ("import jaxclust.data.augment\nfrom jaxclust.methods import common, METHODS\n"
              "def f():\n    from jaxclust import config\n    from . import sibling\n")
    modules = {"jaxclust", "jaxclust.config", "jaxclust.methods", "jaxclust.methods.common",
               "jaxclust.data.augment", "jaxclust.methods.sibling"}
    found = imported_modules(ast.parse(source), "jaxclust.methods.x", False, modules)
    assert found == [("jaxclust.data.augment", 1), ("jaxclust.methods.common", 2), ("jaxclust.methods", 2),
                     ("jaxclust.config", 4), ("jaxclust.methods.sibling", 5)]


def test_no_import_cycle_among_jaxclust_modules():
    """Late imports inside functions count too: a late import that dodges a circle is still one."""
    graph, where = import_graph()
    cycles = find_cycles(graph)
    lines = [" -> ".join(c) + "\n    " + ", ".join(where[a, b] for a, b in zip(c, c[1:])) for c in cycles]
    assert not cycles, "import cycles among jaxclust modules:\n" + "\n".join(lines)


# --- c. no module outside jaxclust/methods/ names a method --------------------------------------------

# (file, literal, reason): string constants equal to a registered method name that do not mean the method.
ALLOWED = [
    ("jaxclust/convert.py", "byol",
     "a wrapper key of the official PyTorch checkpoints (ckpt['byol']), not our method"),
    ("jaxclust/losses.py", "propos",
     "a value of PCL's method.layout: ProtoNCE rows as ProPos' pcl_wrapper lays them out"),
    ("launch/compare_official.py", "propos",
     "a directory of the official Hzzone/ProPos repository (models/propos), checked before importing it"),
]


def method_name_files() -> list[Path]:
    inside = [p for p in sorted(PACKAGE.rglob("*.py")) if (PACKAGE / "methods") not in p.parents]
    return inside + sorted((ROOT / "launch").glob("*.py")) + sorted((ROOT / "bench").glob("*.py"))


def method_mentions(path: Path, names, modules) -> list[tuple[int, str, str]]:
    """(line, name, what) for each import of a method module, attribute access to one through the
    jaxclust.methods package, and string constant equal to a method name in the file at `path`."""
    tree = ast.parse(path.read_text(), str(path))
    method_modules = {f"jaxclust.methods.{n}": n for n in names}
    package_aliases = set()  # local names bound to the jaxclust.methods package
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "jaxclust.methods" and alias.asname:
                    package_aliases.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module == "jaxclust":
            package_aliases |= {a.asname or a.name for a in node.names if a.name == "methods"}
    module = module_name(path) if PACKAGE in path.parents else path.stem
    for target, line in imported_modules(tree, module, path.name == "__init__.py", modules):
        if target in method_modules:
            found.append((line, method_modules[target], f"imports {target}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.append((node.lineno, node.value, f"string {node.value!r}"))
        elif isinstance(node, ast.Attribute) and node.attr in names:
            owner = ast.unparse(node.value)
            if owner == "jaxclust.methods" or owner in package_aliases:
                found.append((node.lineno, node.attr, f"attribute {owner}.{node.attr}"))
    return sorted(set(found))


@pytest.fixture(scope="module")
def method_names():
    from jaxclust.methods import METHODS

    return tuple(METHODS)


def scan_method_mentions(names):
    modules = set(package_files()) | {f"jaxclust.methods.{n}" for n in names}
    return {str(p.relative_to(ROOT)): method_mentions(p, names, modules) for p in method_name_files()}


def test_no_module_outside_methods_names_a_method(method_names):
    allowed = {(f, literal) for f, literal, _ in ALLOWED}
    offenders = [f"{path}:{line}: {what}" for path, hits in scan_method_mentions(method_names).items()
                 for line, name, what in hits if not (what.startswith("string") and (path, name) in allowed)]
    assert not offenders, ("outside jaxclust/methods/, code names a method (find it through "
                           "jaxclust.methods by method.name instead, or add a (file, literal, reason) "
                           "to ALLOWED if the string means something else):\n" + "\n".join(offenders))


def test_allow_list_entries_still_match(method_names):
    """An ALLOWED entry whose string is gone is removed from the list, so it cannot hide a new use."""
    mentions = scan_method_mentions(method_names)
    stale = [(f, literal) for f, literal, _ in ALLOWED
             if not any(name == literal and what.startswith("string") for _, name, what in mentions.get(f, []))]
    assert not stale, f"ALLOWED entries that match nothing any more: {stale}"


def test_method_mention_scanner_finds_each_kind(tmp_path, method_names):
    name = method_names[0]
    path = tmp_path / "tool.py"
    path.write_text(f"import jaxclust.methods.{name}\nfrom jaxclust.methods import {name} as m\n"
                    f"from jaxclust import methods\nx = methods.{name}\ny = {name!r}\nz = 'not a method'\n")
    modules = {"jaxclust", "jaxclust.methods", f"jaxclust.methods.{name}"}
    kinds = [(line, what.split()[0]) for line, _, what in method_mentions(path, method_names, modules)]
    assert kinds == [(1, "imports"), (2, "imports"), (4, "attribute"), (5, "string")]
