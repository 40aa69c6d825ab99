"""The portal's /WebApp section: defaults, sign-in providers, and clear errors for bad settings."""

from __future__ import annotations

import stat

import pytest

from dirac.Core.Config import gConfig
from dirac.Core.Utilities.Exceptions import ConfigurationError
from dirac.WebApp.Config import DEFAULT_SCOPE, loadPortalConfig


def configure(tmp_path, **options: str) -> None:
    gConfig.reset()
    gConfig.initialize(options={"/LocalInstallation/InstancePath": str(tmp_path), **options}, fetchRemote=False)


def test_defaults_and_a_cookie_secret_made_once_with_mode_0600(tmp_path):
    configure(tmp_path)
    config = loadPortalConfig()
    assert config.rootURL == "/DIRAC"
    assert config.sessionLifetime == 12 * 3600
    assert config.logins == ()
    secretFile = tmp_path / "etc" / "webapp.secret"
    assert stat.S_IMODE(secretFile.stat().st_mode) == 0o600
    assert loadPortalConfig().cookieSecret == config.cookieSecret  # kept across restarts


def test_a_login_provider_needs_only_issuer_and_client_id(tmp_path):
    secret = tmp_path / "web.secret"
    secret.write_text("s3cret\n")
    configure(tmp_path, **{"/WebApp/Login/MyIdP/Issuer": "https://idp.example.org/",
                           "/WebApp/Login/MyIdP/ClientID": "dirac-web",
                           "/WebApp/Login/MyIdP/ClientSecretFile": str(secret)})
    (provider,) = loadPortalConfig().logins
    assert (provider.name, provider.issuer, provider.clientID, provider.clientSecret, provider.scope) == \
        ("MyIdP", "https://idp.example.org", "dirac-web", "s3cret", DEFAULT_SCOPE)
    idp = provider.idProvider()
    assert idp.issuer == "https://idp.example.org" and idp.clientID == "dirac-web"


def test_missing_client_id_is_named(tmp_path):
    configure(tmp_path, **{"/WebApp/Login/MyIdP/Issuer": "https://idp.example.org"})
    with pytest.raises(ConfigurationError, match="/WebApp/Login/MyIdP/ClientID"):
        loadPortalConfig()


def test_bad_root_and_lifetime_are_refused(tmp_path):
    configure(tmp_path, **{"/WebApp/RootURL": "/"})
    with pytest.raises(ConfigurationError, match="RootURL"):
        loadPortalConfig()
    configure(tmp_path, **{"/WebApp/SessionLifetime": "soon"})
    with pytest.raises(ConfigurationError, match="SessionLifetime"):
        loadPortalConfig()
