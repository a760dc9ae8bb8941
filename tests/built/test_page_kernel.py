"""The notebook pages share one kernel (``vecgrad_docs.run_pages_early``), each as if alone in it.

A small site is built with myst-nb's cache and ``vecgrad_docs``: the first page changes what a page
can change (names, default dtype, grad mode, warning filters, matplotlib settings, folder,
environment), the second prints that state, which must be a fresh kernel's. Both run in the
shared kernel and reading takes them from the cache. A page added with a raising cell then fails
the build, with its traceback, as without the shared kernel.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONF = """\
extensions = ["myst_nb", "sphinx.ext.viewcode", "vecgrad_docs"]
exclude_patterns = ["_build"]
nb_execution_mode = "cache"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
"""
PAGE = """\
---
file_format: mystnb
kernelspec: {{name: python3, display_name: Python 3}}
---
# Page

```{{code-cell}} ipython3
import os, sys, warnings, matplotlib, torch
{code}
```
"""
CHANGE = """\
leak = 1
torch.set_default_dtype(torch.float64); torch.set_grad_enabled(False); torch.set_num_threads(3)
warnings.simplefilter("error"); matplotlib.rcParams["lines.linewidth"] = 9
os.chdir(os.sep); os.environ["VECGRAD_LEAK"] = "1"; sys.path.append("leak")
"""
STATE = """\
print("state:", "leak" in dir(), torch.get_default_dtype(), torch.is_grad_enabled(),
      torch.get_num_threads() != 3, "leak" in sys.path,
      ("error", None, Warning, None, 0) in warnings.filters, matplotlib.rcParams["lines.linewidth"],
      os.path.basename(os.getcwd()), "VECGRAD_LEAK" in os.environ)
"""


def build(src: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sphinx", "-b", "html", str(src), str(src / "_build")]
    # A hung build fails here instead of stalling the tests.
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    src = tmp_path_factory.mktemp("site")
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    (src / "index.md").write_text("# Pages\n\n```{toctree}\na_change\nc_state\nd_temp\n```\n")
    (src / "a_change.md").write_text(PAGE.format(code=CHANGE), encoding="utf-8")
    (src / "c_state.md").write_text(PAGE.format(code=STATE), encoding="utf-8")
    # A page's own settings: myst-nb runs it in a temporary folder, as it reads it.
    temp = PAGE.replace("---\n#", "mystnb: {{execution_in_temp: true}}\n---\n#")
    (src / "d_temp.md").write_text(temp.format(code="print('in', os.getcwd())"), "utf-8")
    result = build(src)
    assert result.returncode == 0, result.stdout + result.stderr
    return src, result.stdout


def test_each_page_starts_as_in_a_fresh_kernel(site: tuple[Path, str]) -> None:
    html = (site[0] / "_build" / "c_state.html").read_text(encoding="utf-8")
    assert f"state: False torch.float32 True True False False 1.5 {site[0].name} False" in html


def test_pages_ran_in_the_shared_kernel_and_were_read_from_the_cache(
    site: tuple[Path, str],
) -> None:
    for page in ("a_change", "c_state"):
        assert f"{page}.md: Executing notebook in the pages' kernel" in site[1]
        assert f"{page}.md: Using cached notebook" in site[1]
    assert "using local CWD" not in site[1]  # myst-nb ran no page itself


def test_a_page_with_its_own_execution_settings_is_left_to_myst_nb(
    site: tuple[Path, str],
) -> None:
    assert "d_temp.md: Executing notebook in the pages' kernel" not in site[1]
    assert "d_temp.md: Executing notebook using temporary CWD" in site[1]
    html = (site[0] / "_build" / "d_temp.html").read_text(encoding="utf-8")
    assert f"in {site[0]}<" not in html


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("1 / 0", "ZeroDivisionError"),
        ("os._exit(1)", "DeadKernelError"),  # nbclient once waited forever for its output
    ],
)
def test_a_failing_page_fails_the_build_with_its_traceback(
    site: tuple[Path, str], code: str, error: str
) -> None:
    page = site[0] / "b_fail.md"
    page.write_text(PAGE.format(code=code), encoding="utf-8")
    try:
        result = build(site[0])
    finally:
        page.unlink()
    assert result.returncode != 0
    assert error in result.stdout + result.stderr
