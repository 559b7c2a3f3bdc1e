"""The judge both reliability modules share: real Envoy, and generated PEM files for the certificate paths policies
name."""

from __future__ import annotations

import pytest
from judge import Judge
from pki import write_pem_files


@pytest.fixture(scope="module")
def judge(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Judge:
    pem = tmp_path_factory.mktemp("pem")
    write_pem_files(pem)
    return Judge(envoy_bin, pem, tmp_path_factory.mktemp("trees"))
