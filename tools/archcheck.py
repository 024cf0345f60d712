# tools/archcheck.py: the architecture checks of issue 15, with the stdlib's ast only.
# Over firmware/lib/**, host_server/**, tools/**, bench/** and testkit/** it builds the
# module import graph (module-level and function-level imports; `from pkg import sub`
# where sub is a submodule is an edge to pkg.sub, not to pkg/__init__) and counts:
#   cycles      import cycles (strongly connected components of more than one module)
#   tests       imports of modules under tests/, sys.path edits pointing at tests/, and
#               strings naming a path under tests/ (a script run, a MICROPYPATH entry)
#   private     private names of the core (airshake.*) used outside firmware/lib/airshake/
#   wirebits    `>> 5` or `& 0x1F` outside firmware/lib/airshake/codec.py
#   initloop    .handle_timer( calls outside the core in modules that use an Initiator
# Usage: python tools/archcheck.py [--root DIR] [--json]   (exit status 0; it reports)
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

# (folder, the package name its files are imported as; "" = the folder holds top-level
# packages). tools/ is installed as airshake_tools (pyproject.toml).
TREES = (("firmware/lib", ""), ("host_server", "host_server"), ("tools", "airshake_tools"),
         ("bench", "bench"), ("testkit", "testkit"))
CORE = "firmware/lib/airshake/"
CODEC = "firmware/lib/airshake/codec.py"
# the bit operations of these files read other formats' bytes, not airshake's head byte:
# der.py takes the tag number of an ASN.1 identifier octet (X.690 §8.1.2)
WIRE_EXEMPT = (CODEC, "firmware/lib/airshake/der.py")
# may name paths in tests/: the checker reads tests/ to learn its module names, and
# testkit serves the tests (their vectors)
TEST_PATH_EXEMPT = ("tools/archcheck.py", "testkit/")
KINDS = ("cycles", "tests", "private", "wirebits", "initloop")
SHOW = 6  # findings printed per kind (all are counted)


def modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every .py file of the trees."""
    found = {}
    for folder, package in TREES:
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(([package] if package else []) + parts)
            if name:
                found[name] = path
    return found


def test_names(root: Path) -> set[str]:
    """Names a module under tests/ is imported as (tests/ is not a package; the stand-ins
    for MicroPython's own modules, `machine` and `lora`, are product: tools/linkemu/mp)."""
    names = {"tests"}
    for path in (root / "tests").rglob("*.py"):
        names.add(path.stem)
    return names


def _resolve(name: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module of a `from X import` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    parts = name.split(".")
    base = parts[:len(parts) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, tree: ast.AST, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported name, line) for every import in the module, at any depth; a submodule
    named in `from pkg import sub` counts as pkg.sub."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            pkg = _resolve(name, known[name].name == "__init__.py", node)
            for a in node.names:
                sub = pkg + "." + a.name
                out.append((sub if sub in known else pkg, node.lineno))
    return out


def _known_prefix(target: str, known: dict[str, Path]) -> str | None:
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _sys_path_edit(node: ast.AST) -> bool:
    """sys.path.insert/append/extend(...) or an assignment to sys.path[...]."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        return (node.func.attr in ("insert", "append", "extend")
                and ast.unparse(owner) == "sys.path")
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(ast.unparse(t).startswith("sys.path") for t in targets)
    return False


def _points_at_tests(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            parts = sub.value.replace("\\", "/").strip("/").split("/")
            if "tests" in parts:
                return True
    return False


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose, not paths in use)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def check_test_paths(tree: ast.AST) -> list:
    """(line, text) for every string naming a path into tests/: "tests/host/x.py",
    "tests" joined into a path (ROOT / "tests" / ..., os.path.join(ROOT, "tests", ..)), or
    "tests" as the first part of a path string. Docstrings and messages (strings with
    spaces) are prose."""
    prose = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        joined: list[ast.AST] = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            joined = [node.left, node.right]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("path.join"):
            joined = list(node.args)
        for part in joined:
            if isinstance(part, ast.Constant) and part.value in ("tests", "tests/"):
                out.append((getattr(node, "lineno", 0), ast.unparse(node)))
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in prose and " " not in node.value):
            parts = [p for p in re.split(r"[/\\:;]", node.value) if p not in ("", ".")]
            if len(parts) > 1 and "tests" in parts:
                out.append((node.lineno, repr(node.value)))
    return sorted(set(out))


def core_self_attrs(trees: Mapping[str, ast.AST]) -> set[str]:
    """Private attribute names the core's classes set on self."""
    names = set()
    for mod, tree in trees.items():
        if not mod.startswith("airshake"):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                names.add(node.attr)
    return names


def _private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def check_private(tree: ast.AST, core_attrs: set[str], known: dict[str, Path]) -> list:
    """(line, text) for every private name of the core this module touches."""
    out = []
    aliases = set()   # local names bound to an airshake module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "airshake":
                    aliases.add(a.asname or a.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airshake"):
            for a in node.names:
                if _private(a.name):
                    out.append((node.lineno, "from %s import %s" % (node.module, a.name)))
                elif (node.module or "") + "." + a.name in known:
                    aliases.add(a.asname or a.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = ast.unparse(node.value)
            if owner in aliases or (node.attr in core_attrs and owner != "self"):
                out.append((node.lineno, "%s.%s" % (owner, node.attr)))
    return out


def check_wirebits(tree: ast.AST) -> list:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.right, ast.Constant):
            if ((isinstance(node.op, ast.RShift) and node.right.value == 5)
                    or (isinstance(node.op, ast.BitAnd) and node.right.value == 0x1F)):
                out.append((node.lineno, ast.unparse(node)))
    return out


def check_initloop(tree: ast.AST) -> list:
    """.handle_timer( calls in a module that imports the Initiator."""
    uses = any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("airshake")
               and any(a.name in ("Initiator", "initiator") for a in n.names)
               or isinstance(n, ast.Import) and any(a.name == "airshake.initiator"
                                                    for a in n.names)
               for n in ast.walk(tree))
    if not uses:
        return []
    return [(n.lineno, ast.unparse(n.func)) for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "handle_timer"]


def analyse(root: Path) -> dict[str, list[str]]:
    known = modules(root)
    trees = {m: ast.parse(p.read_bytes(), str(p)) for m, p in known.items()}
    rel = {m: p.relative_to(root).as_posix() for m, p in known.items()}
    tests = test_names(root)
    core_attrs = core_self_attrs(trees)
    graph: dict[str, set[str]] = {m: set() for m in known}
    found: dict[str, list[str]] = {k: [] for k in KINDS}
    for mod, tree in trees.items():
        where = rel[mod]
        for target, line in sorted(set(imports(mod, tree, known)), key=lambda t: t[1]):
            hit = _known_prefix(target, known)
            if hit and hit != mod:
                graph[mod].add(hit)
            elif not hit and target.split(".")[0] in tests:
                found["tests"].append("%s:%d imports %s" % (where, line, target))
        edits = {getattr(node, "lineno", 0) for node in ast.walk(tree)
                 if _sys_path_edit(node) and _points_at_tests(node)}
        found["tests"] += ["%s:%d sys.path -> tests/" % (where, ln) for ln in sorted(edits)]
        if not where.startswith(TEST_PATH_EXEMPT):
            found["tests"] += ["%s:%d names a path in tests/: %s" % (where, ln, t)
                               for ln, t in check_test_paths(tree) if ln not in edits]
        if not where.startswith(CORE):
            found["private"] += ["%s:%d %s" % (where, ln, t)
                                 for ln, t in check_private(tree, core_attrs, known)]
            found["initloop"] += ["%s:%d %s(" % (where, ln, t)
                                  for ln, t in check_initloop(tree)]
        if where not in WIRE_EXEMPT:
            found["wirebits"] += ["%s:%d %s" % (where, ln, t) for ln, t in check_wirebits(tree)]
    for kind in KINDS:
        found[kind].sort(key=_place)
    found["cycles"] = [" <-> ".join(c) for c in sccs(graph)]
    return found


def _place(finding: str) -> tuple[str, int]:
    path, _, rest = finding.partition(":")
    line = rest.split(" ", 1)[0]
    return (path, int(line) if line.isdigit() else 0)


def report(found: dict[str, list[str]]) -> str:
    lines = []
    for kind in KINDS:
        items = found[kind]
        lines.append("%-9s %d" % (kind, len(items)))
        lines += ["  " + i for i in items[:SHOW]]
        if len(items) > SHOW:
            lines.append("  ... and %d more" % (len(items) - SHOW))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/archcheck.py", description=__doc__)
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), help="checkout to check (default: this one)")
    p.add_argument("--json", action="store_true", help="every finding, as JSON")
    args = p.parse_args(argv)
    found = analyse(Path(args.root))
    print(json.dumps(found, indent=1) if args.json else report(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
