"""The examples in the back ends' docstrings, run by their installed names (``exprc.codegen.*``).

pytest's ``--doctest-modules`` would import ``codegen/`` by its folder name, a second
copy of every module; these tests import each module as exprc does."""

import doctest
import importlib
import pkgutil

import pytest

import exprc.codegen


def _modules():
    names = [exprc.codegen.__name__]
    for info in pkgutil.walk_packages(exprc.codegen.__path__, prefix="exprc.codegen."):
        names.append(info.name)
    return sorted(names)


def _examples():
    finder = doctest.DocTestFinder()
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                yield pytest.param(test, id=test.name)


@pytest.mark.parametrize("test", list(_examples()))
def test_docstring_example(test):
    report = []
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
