"""The environment allowlist matches exactly as ``fnmatch.fnmatchcase`` does, pattern by pattern."""

from __future__ import annotations

import fnmatch
from typing import Dict, List

from hypothesis import given
from hypothesis import strategies as st

from lute_kernel.runtimes.base import TASK_ENV_ALLOWLIST, allowed_env

_NAME = st.text(alphabet="ABLCPSUMX_*?[]!-abc09\n", max_size=8)


@given(host=st.dictionaries(_NAME, st.just("v"), max_size=12), patterns=st.lists(_NAME, max_size=6))
def test_it_keeps_what_fnmatchcase_keeps(host: Dict[str, str], patterns: List[str]) -> None:
    expected = {k: v for k, v in host.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    assert allowed_env(host, patterns) == expected


def test_the_kernels_own_list_on_a_typical_environment() -> None:
    host = {"LANG": "C", "LC_ALL": "C", "LCX": "no", "SLURM_JOB_ID": "1", "slurm_job": "no", "HOME": "/h", "LUTE_": "1"}
    assert allowed_env(host, TASK_ENV_ALLOWLIST) == {"LANG": "C", "LC_ALL": "C", "SLURM_JOB_ID": "1", "LUTE_": "1"}
    assert allowed_env(host, []) == {}
