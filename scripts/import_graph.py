"""The import graph of src/infomax: which module imports which (top-level and inside functions),
with its cycles, and whether any base module imports a study.  Exit status 1 on a cycle or a base
module that reaches into a study package.

    python scripts/import_graph.py            # edges, then "no cycle" / the cycles
"""

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path, package: str) -> set[str]:
    """Modules of ``package`` that the file imports (absolute or relative, anywhere in it)."""
    name = module_name(path, root)
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            mod = ".".join(base + (node.module.split(".") if node.module else []))
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        out |= {t for t in targets if t.split(".")[0] == package}
    return out


def graph(root: Path = SRC, package: str = "infomax") -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in (root / package).rglob("*.py")}
    g = {}
    for mod, path in files.items():
        # an import of a name inside a module counts as an import of that module
        g[mod] = {t if t in files else t.rsplit(".", 1)[0] for t in imports(path, root, package)} - {mod}
        g[mod] = {t for t in g[mod] if t in files}
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def base_into_studies(g: dict[str, set[str]], package: str = "infomax") -> list[str]:
    """Base modules (directly under the package, except the dispatchers that loop over the studies)
    that import a study package."""
    studies = {m.split(".")[1] for m in g if m.count(".") >= 2 and m.split(".")[1] != "tools"}
    allowed = {f"{package}.studies", f"{package}.report", f"{package}.cli", f"{package}.__main__"}
    return [f"{m} -> {t}" for m in sorted(g) if m.count(".") == 1 and m not in allowed
            for t in sorted(g[m]) if t.count(".") >= 2 and t.split(".")[1] in studies]


def main(argv=None) -> int:
    root = Path(argv[0]) if argv else SRC
    g = graph(root)
    for mod in sorted(g):
        print(f"{mod} -> {', '.join(sorted(g[mod])) or '-'}")
    found, leaks = cycles(g), base_into_studies(g)
    for c in found:
        print("cycle: " + " <-> ".join(c))
    for leak in leaks:
        print("base imports a study: " + leak)
    if not found and not leaks:
        print(f"{len(g)} modules: no cycle; no base module imports a study")
    return 1 if found or leaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
