"""The programs the scripted coder writes: they must run and print the right answer."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from autobots.models._scripted_tasks import code_for_task, evaluate_arithmetic, find_arithmetic


def run(code: str) -> str:
    """Run a generated program (ours, not a client's) and return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<scripted>", "exec"), {"__name__": "__main__"})
    return out.getvalue().strip()


class TestCodeForTask:
    @pytest.mark.parametrize(
        ("task", "printed"),
        [
            ("what is 12*(3+4)?", "84"),
            ("compute 2**10", "1024"),
            ("Calculate 17 + 25.", "42"),
            ("list the first 10 primes", "[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]"),
            ("List the first 5 prime numbers", "[2, 3, 5, 7, 11]"),
            ("list the first 4 squares", "[1, 4, 9, 16]"),
            ("show the first 3 perfect squares", "[1, 4, 9]"),
            ("list the first 4 even numbers", "[2, 4, 6, 8]"),
            ("list the first 4 odd numbers", "[1, 3, 5, 7]"),
            ("list the first 7 fibonacci numbers", "[0, 1, 1, 2, 3, 5, 8]"),
            ("list the first 3 numbers", "[1, 2, 3]"),
            ("list numbers from 3 to 6", "[3, 4, 5, 6]"),
            ("count from 5 to 2", "[5, 4, 3, 2]"),
            ("write a poem about owls", "write a poem about owls"),
            ("print the first 10 words of 'it's' \"quoted\"", "print the first 10 words of 'it's' \"quoted\""),
        ],
    )
    def test_programs_print_the_answer(self, task: str, printed: str) -> None:
        assert run(code_for_task(task)) == printed

    def test_list_the_files(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp_path / "b.txt").write_text("")
        (tmp_path / "a.txt").write_text("")
        monkeypatch.chdir(tmp_path)
        code = code_for_task("list the files in the current directory")
        assert code == "import os\n\nprint(sorted(os.listdir('.')))"
        assert run(code) == str(sorted(os.listdir(".")))

    def test_huge_lists_are_capped(self) -> None:
        assert code_for_task("list numbers from 1 to 999999999") == "print(list(range(1, 10002)))"


class TestArithmetic:
    @pytest.mark.parametrize(
        ("text", "expression"),
        [
            ("what is 12*(3+4)?", "12*(3+4)"),
            ("compute (1 + 2) * 3 please", "(1 + 2) * 3"),
            ("on 2024-01-02 nothing", None),
            ("call me at 555 1234", None),
            ("list the first 10 primes", None),
        ],
    )
    def test_find(self, text: str, expression: str | None) -> None:
        assert find_arithmetic(text) == expression

    @pytest.mark.parametrize("expression", ["9**9**9", "1/0", "__import__('os')", "2**(10**6)"])
    def test_refuses_dangerous_or_impossible(self, expression: str) -> None:
        assert evaluate_arithmetic(expression) is None

    def test_values(self) -> None:
        assert evaluate_arithmetic("-(7 % 4) + 2 ** 3 // 3") == -1
        assert evaluate_arithmetic("7 / 2") == 3.5
