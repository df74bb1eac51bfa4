"""The console script: every subcommand has --help, and --help imports nothing heavy."""

import subprocess
import sys

import pytest

from affectllm.cli import COMMANDS, build_parser


@pytest.mark.parametrize("cmd", [None, *COMMANDS])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([cmd, "--help"] if cmd else ["--help"])
    assert e.value.code == 0
    assert "usage: affectllm" in capsys.readouterr().out


def test_help_does_not_import_torch():
    code = ("import sys; from affectllm.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'transformers', 'mediapipe', 'gradio') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_explain_needs_input(capsys):
    from affectllm.cli import main

    assert main(["explain"]) == 2
    assert "at least one file" in capsys.readouterr().err
