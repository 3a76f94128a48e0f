"""A property of every program and every flag: a bad value is one ``error:`` line naming the
flag, exit status 2, no traceback, and TensorFlow never imported.

The flags are generated from the config fields (``tfgender.config``), which declare their types,
bounds and choices, so the cases are made from what each flag declares rather than listed by
hand: a flag added tomorrow is covered without a new test. One process per program (each
defines its flags at import); every case in it goes through ``cli.parse_flags``, the parser
the program runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "tfgender", "cli"))
                  if name.endswith(".py") and name != "__init__.py")

# Runs in the program's process: makes the cases from the flags it defines, feeds each to the
# parser, and prints one JSON object (the cases and what each printed).
_DRIVER = r'''
import contextlib, dataclasses, importlib, io, json, re, sys, typing
from absl import flags as absl_flags
from tfgender import config as config_lib
from tfgender.cli import PATH_FLAGS, parse_flags

importlib.import_module("tfgender.cli." + sys.argv[1])
FLAGS = absl_flags.FLAGS
ours = sorted(n for n in FLAGS if (FLAGS.find_module_defining_flag(n) or "").startswith(
    "tfgender.flags"))
# A list flag's element type, from the config fields (the same name has one type everywhere).
elements = {"folds": int}
for cls in vars(config_lib).values():
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        for name, hint in typing.get_type_hints(cls).items():
            if typing.get_origin(hint) is tuple:
                elements[name] = typing.get_args(hint)[0]

def required(name):
    return any("must have a value" in str(getattr(v, "message", ""))
               for v in FLAGS[name].validators)

base = []
for name in ours:
    if required(name):
        parser = FLAGS[name].parser
        value = parser.enum_values[0] if hasattr(parser, "enum_values") else "x"
        base.append(f"--{name}={value}")

def parse_base(args):
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            parse_flags(["prog", *base, *args])
        except SystemExit as exited:
            code = exited.code
    FLAGS.unparse_flags()
    return code, err.getvalue()

# A flag only a check after parsing requires (--data_dir of a conversion unless the source is a
# table) is added to the base as that check names it.
for _ in range(5):
    code, err = parse_base([])
    missing = re.search(r"flag --(\w+) must have a value", err)
    if code == 0 or not missing:
        break
    base.append(f"--{missing.group(1)}=x")
parse = parse_base

cases, unbounded = [], []
for name in ours:
    flag = FLAGS[name]
    kind = type(flag.parser).__name__
    bad = []
    if kind in ("IntegerParser", "FloatParser"):
        bad.append("x")
        low, high = flag.parser.lower_bound, flag.parser.upper_bound
        if low is None:
            unbounded.append(name)
        else:
            bad.append(str(low - 1))
        if high is not None:
            bad.append(str(high + 1))
    elif kind == "BooleanParser":
        bad.append("maybe")
    elif kind == "EnumParser":
        bad.append("no_such_choice")
    elif kind == "ListParser":
        if elements.get(name) in (int, float):
            bad.append("1,x")
    if name in PATH_FLAGS and kind != "EnumParser":
        bad.append("gs://bucket/" + name)
    cases += [(name, f"--{name}={value}") for value in bad]
# Fields tied to each other (config.check_train): the lists that are ranges of two numbers, and
# more dropout rates than the head has layers.
for name in ("brightness", "contrast", "saturation", "crop_scale", "erasing_scale"):
    if name in ours:
        cases.append((name, f"--{name}=0.1,0.2,0.3"))
if "dropout" in ours:
    cases.append(("dropout", "--dropout=0.1,0.1,0.1,0.1"))
    cases.append(("head_units", "--model=levi_hassner --head_units=16"))

results = [{"flag": name, "args": args} for name, args in cases]
for result in results:
    result["code"], result["stderr"] = parse(result["args"].split(" "))
valid_code, valid_stderr = parse([])
print(json.dumps({"flags": ours, "results": results, "unbounded": unbounded,
                  "valid": [valid_code, valid_stderr],
                  "tensorflow": "tensorflow" in sys.modules or "keras" in sys.modules}))
'''


@pytest.fixture(scope="module", params=PROGRAMS)
def program_cases(request) -> tuple[str, dict]:
    proc = subprocess.run([sys.executable, "-c", _DRIVER, request.param], capture_output=True,
                          text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return request.param, json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_bad_value_is_one_line_naming_its_flag(program_cases):
    program, found = program_cases
    assert found["flags"] and found["results"], program
    # The cases can fail: the program's required flags alone parse.
    assert found["valid"] == [0, ""], (program, found["valid"])
    wrong = []
    for case in found["results"]:
        lines = case["stderr"].strip().splitlines()
        if not (case["code"] == 2 and len(lines) == 1 and lines[0].startswith("error:")
                and f"--{case['flag']}" in lines[0] and "Traceback" not in case["stderr"]):
            wrong.append((case["args"], case["code"], case["stderr"][-300:]))
    assert not wrong, (program, wrong)
    assert not found["tensorflow"], f"{program} imported TensorFlow to check its flags"


def test_every_number_a_user_types_has_a_lower_bound(program_cases):
    # No negative interval, buffer, size or rate is accepted (issue 32).
    program, found = program_cases
    assert found["unbounded"] == [], (program, found["unbounded"])
