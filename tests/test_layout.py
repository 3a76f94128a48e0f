"""The README's layout block is the tree: every module is named under its folder."""

from __future__ import annotations

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _layout_sections() -> dict[str, str]:
    """``{folder or file named at the start of a line: the text of its entry}``."""
    readme = open(os.path.join(REPO, "README.md")).read()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    sections, name = {}, None
    for line in block.splitlines():
        head = re.match(r"(tfgender/\S*)\s", line + " ")
        if head:
            name = head.group(1)
        if name:
            sections[name] = sections.get(name, "") + " " + line
    return sections


def _modules(folder: str) -> list[str]:
    path = os.path.join(REPO, folder)
    return sorted(f[:-3] for f in os.listdir(path)
                  if f.endswith(".py") and f != "__init__.py")


def test_every_package_and_module_is_in_the_readme_layout_block():
    sections = _layout_sections()
    packages = sorted(f"tfgender/{d}/" for d in os.listdir(os.path.join(REPO, "tfgender"))
                      if os.path.exists(os.path.join(REPO, "tfgender", d, "__init__.py")))
    assert sorted(s for s in sections if s.endswith("/") and s != "tfgender/") == packages
    missing = []
    for package in packages:
        if package == "tfgender/cli/":
            continue  # one module per bin/ program: checked below
        missing += [f"{package}{m}" for m in _modules(package)
                    if not re.search(rf"\b{m}\b", sections[package])]
    top = " ".join(text for name, text in sections.items() if not name.endswith("/")
                   or name == "tfgender/")
    missing += [f"tfgender/{m}" for m in _modules("tfgender") if not re.search(rf"\b{m}\b", top)]
    assert not missing, f"modules the README's layout block does not name: {missing}"


def test_every_cli_module_is_a_bin_program():
    assert _modules("tfgender/cli") == sorted(os.listdir(os.path.join(REPO, "bin")))
