"""``affectllm data``: argument parsing, sources listing, re-verification, clear errors."""

from __future__ import annotations

import argparse
import json

from affectllm.io import jsonl
from data_engine import cli as cmd
from data_engine.build import build
from data_fakes import fake_perceive, make_manifest


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="affectllm data")
    cmd.add_arguments(p)
    return p


def test_build_arguments():
    a = parser().parse_args(["build", "--source", "emodb", "--source", "manifest:x.csv", "--out", "d",
                             "--limit", "5", "--teacher-url", "http://127.0.0.1:1/v1", "--teacher-model", "m"])
    assert a.source == ["emodb", "manifest:x.csv"] and a.out == "d" and a.limit == 5 and not a.restart
    assert cmd._teacher(a).name == "http:m"


def test_sources_and_errors(capsys, tmp_path):
    assert cmd.run(parser().parse_args(["sources"])) == 0
    assert "emodb" in capsys.readouterr().out
    args = parser().parse_args(["build", "--source", f"manifest:{tmp_path}/nope.csv", "--out", str(tmp_path / "o"),
                                "--quiet", "--no-hf"])
    assert cmd.run(args) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_verify_action(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    build([make_manifest(tmp_path / "src", n=6)], tmp_path / "out", perceive=fake_perceive, hf=False,
          progress=False)
    sft = tmp_path / "out" / "sft.jsonl"
    assert cmd.run(parser().parse_args(["verify", str(sft)])) == 0
    recs = list(jsonl.read(sft))
    recs[0]["messages"][-1]["content"] = recs[0]["messages"][-1]["content"].replace(
        f"<answer>{recs[0]['label']}", "<answer>surprise" if recs[0]["label"] != "surprise" else "<answer>fear")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert cmd.run(parser().parse_args(["verify", str(bad)])) == 1
    out = capsys.readouterr()
    assert recs[0]["id"] in out.out and "5/6 record(s) pass" in out.err
