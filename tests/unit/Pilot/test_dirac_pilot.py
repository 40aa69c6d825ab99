"""The pilot's choice of credential: a proxy file that does not exist is no credential."""

from __future__ import annotations

from pathlib import Path

import pytest

from dirac.Pilot import dirac_pilot


def test_the_environments_proxy_counts_only_when_its_file_exists(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "job.proxy"))  # named by A-REX, never written
    assert dirac_pilot.environmentProxy() == ""
    (tmp_path / "job.proxy").write_text("a proxy")
    assert dirac_pilot.environmentProxy() == str(tmp_path / "job.proxy")
    monkeypatch.delenv("X509_USER_PROXY")
    assert dirac_pilot.environmentProxy() == ""


def test_a_pilot_whose_proxy_variable_names_no_file_uses_its_token_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "job.proxy"
    token = tmp_path / "pilot.token"
    token.write_text("a.jwt.token")
    monkeypatch.setenv("X509_USER_PROXY", str(missing))
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token))
    # --check-only stops before installing anything, right after the credential is chosen and the node checked
    code = dirac_pilot.main(["--cs", "https://cs.invalid:8443/Configuration/Server", "--site", "DIRAC.Test.org",
                             "--ce", "ce.test.org", "--workdir", str(tmp_path / "work"), "--check-only",
                             "--benchmark", "builtin"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"$X509_USER_PROXY names {missing}, which does not exist: not used" in out
    assert f"credential: access token in {token}" in out
