"""Every reference to realfake code in the package's docstrings and comments and in the documents resolves.

A reference is ``realfake.<module>`` or ``realfake.<module>.<name>`` (a name of the module, or of a class in it:
``realfake.stats.auc.AgainstReals.test``), written out or as the target of a ``:func:``, ``:class:``, ``:mod:`` or
``:data:`` role (``:func:`~realfake.stats.auc.auc_test```). It is checked by importing the module and looking the name
up, so a renamed or deleted function, or a module moved, fails here with the file and line that still name it.
A function or class must be named where it is defined, or where a package exports it (``__all__``): a module
that merely imports it is not its home. In the package, a role's target without ``realfake.``
(``:func:`read_history```) names something of the module the docstring is in, or of one of its classes.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

from fixtures import REPOSITORY

PACKAGE = REPOSITORY / "src" / "realfake"
DOCUMENTS = (
    *sorted((REPOSITORY / "docs").rglob("*.md")),  # docs/results/ too
    REPOSITORY / "config" / "README.md",
    REPOSITORY / "README.md",
)

# realfake.a.b.c, not as part of a longer dotted name or a path (src/realfake/..., x.realfake.y).
REFERENCE = re.compile(r"(?<![\w./-])realfake(?:\.[A-Za-z_]\w*)+")
# A Sphinx role's target: the bare package, or (in the package) a name of the module the docstring is in.
ROLE = re.compile(r":(?:func|class|mod|data|meth|attr):`~?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\(\))?`")


def references(text: str) -> Iterator[tuple[int, str]]:
    """(offset in ``text``, target) of every reference in ``text``: realfake.<...>, and every role's target."""
    found = {match.start(1): match.group(1) for match in ROLE.finditer(text)}
    found.update({match.start(): match.group() for match in REFERENCE.finditer(text)})
    yield from sorted(found.items())


def python_texts(source: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of every docstring (a statement that is only a string) and every comment of ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            yield node.lineno, node.value.value
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def module_name(path: Path) -> str | None:
    """The dotted name of a module of the package (None for any other file)."""
    if path.suffix != ".py" or not path.is_relative_to(PACKAGE):
        return None
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unresolved(reference: str, at_home: bool = True) -> str | None:
    """None when ``reference`` names a realfake module or a name defined (or exported) in one, or in a class of
    one; else why not.

    A name a package does not hold is imported as its submodule; a class's name may also be a dataclass field or
    an annotated attribute without a default. ``at_home=False``: a function or class a module imports counts too.
    """
    parts = reference.split(".")
    target, path = importlib.import_module(parts[0]), parts[0]
    for part in parts[1:]:
        if hasattr(target, part):
            found = getattr(target, part)
            home = getattr(found, "__module__", None)
            if (
                at_home
                and inspect.ismodule(target)
                and (inspect.isfunction(found) or inspect.isclass(found))
                and home != target.__name__
                and part not in getattr(target, "__all__", ())
            ):
                return f"{path} only imports it: it is {home}.{part}"
            target = found
        elif hasattr(target, "__path__") and importlib.util.find_spec(f"{path}.{part}") is not None:
            target = importlib.import_module(f"{path}.{part}")
        elif isinstance(target, type) and (
            part in getattr(target, "__annotations__", {})
            or (dataclasses.is_dataclass(target) and part in {field.name for field in dataclasses.fields(target)})
        ):
            return None  # a field: nothing further can be looked up on it
        else:
            return f"{path} has no {part}"
        path = f"{path}.{part}"
    return None


def unresolved_in(target: str, module: str | None) -> str | None:
    """:func:`unresolved` of a reference as written in ``module`` (None: outside the package)."""
    if target == "realfake" or target.startswith("realfake."):
        return unresolved(target)
    if module is None:
        return None  # a role outside the package names nothing this test can check
    classes = [name for name, value in vars(importlib.import_module(module)).items() if inspect.isclass(value)]
    for owner in (module, *(f"{module}.{name}" for name in classes)):
        if unresolved(f"{owner}.{target}", at_home=False) is None:
            return None
    return f"neither {module} nor a class of it has {target}"


def broken_references(paths, module_of=module_name) -> list[str]:
    """One line, ``path:line: reference (why)``, per reference in ``paths`` that does not resolve;
    ``module_of(path)`` is the module a Python file's bare role targets belong to."""
    problems = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        module = module_of(path)
        texts = python_texts(source) if path.suffix == ".py" else [(1, source)]
        name = path.relative_to(REPOSITORY) if path.is_relative_to(REPOSITORY) else path
        for first_line, text in texts:
            for offset, target in references(text):
                why = unresolved_in(target, module)
                if why is not None:
                    problems.append(f"{name}:{first_line + text.count(chr(10), 0, offset)}: {target} ({why})")
    return problems


def test_every_realfake_reference_in_the_package_and_documents_resolves():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 30 and all(path.is_file() for path in DOCUMENTS)
    problems = broken_references([*sources, *DOCUMENTS])
    assert problems == [], "references to realfake code that do not resolve:\n" + "\n".join(problems)


def test_broken_references_are_found_in_docstrings_comments_roles_and_documents(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        '"""See :func:`~realfake.stats.auc.no_such_test`, realfake.stats.auc.auc_test and :func:`auc_test`."""\n'
        "\n"
        "\n"
        "def f():\n"
        '    """Calls\n'
        '    realfake.no_such_module.run and :meth:`test` (AgainstReals\'s), not :func:`no_such_function`."""\n'
        "    message = 'realfake.in_a_string_not_a_docstring'\n"
        "    return message  # like realfake.stats.auc.AgainstReals.no_such_method\n"
    )
    document = tmp_path / "notes.md"
    document.write_text(
        "`realfake.stats.bootstrap.bootstrap_aucs`, `realfake.stats.auc.AucTest.auc`,\n"
        "`realfake.report.page.PageContent.metrics`,\n"
        ":mod:`realfake`, :mod:`realfake.formats.cutouts`, `realfake.cutouts.run_cutouts` (exported),\n"
        "src/realfake/stats.py, :func:`anything`; but `realfake.stats.auc_of_everything`\n"
        "and realfake.stats.auc.bootstrap_aucs (imported there from realfake.stats).\n"
    )
    assert broken_references([module, document], {module: "realfake.stats.auc"}.get) == [
        f"{module}:1: realfake.stats.auc.no_such_test (realfake.stats.auc has no no_such_test)",
        f"{module}:6: realfake.no_such_module.run (realfake has no no_such_module)",
        f"{module}:6: no_such_function (neither realfake.stats.auc nor a class of it has no_such_function)",
        f"{module}:8: realfake.stats.auc.AgainstReals.no_such_method "
        "(realfake.stats.auc.AgainstReals has no no_such_method)",
        f"{document}:4: realfake.stats.auc_of_everything (realfake.stats has no auc_of_everything)",
        f"{document}:5: realfake.stats.auc.bootstrap_aucs (realfake.stats.auc only imports it: it is "
        "realfake.stats.bootstrap.bootstrap_aucs)",
    ]
