"""Maps the three source folders onto the ``spanledger`` import package.

``spanledger`` lives in ``spanledger/``, ``spanledger.instrumentation`` in ``instrumentation/``
and ``spanledger.processor`` in ``processor/``; every sub-package under them is found here so
that ``pip install .`` and ``pip install -e .`` both see the same tree.
"""

from setuptools import find_packages, setup

ROOTS = {
    "spanledger": "spanledger",
    "spanledger.instrumentation": "instrumentation",
    "spanledger.processor": "processor",
}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder))
    return found


setup(packages=_packages(), package_dir=ROOTS)
