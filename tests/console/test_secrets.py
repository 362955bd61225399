"""Secrets: found in env or store, never printed."""

from __future__ import annotations

import logging

import pytest

from console.secrets import (MemorySecretStore, Secret, SecretError, SecretResolver, env_var_name)


def test_secret_never_shows_its_value(caplog: pytest.LogCaptureFixture) -> None:
    s = Secret("hunter2-token")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("secret is %s / %r", s, s)
    assert "hunter2" not in caplog.text
    assert s.reveal() == "hunter2-token"


def test_env_var_names_are_derived_from_cluster_and_endpoint() -> None:
    assert env_var_name("lab-1", "slurm") == "AISC_SECRET_LAB_1_SLURM"


def test_environment_wins_over_the_store() -> None:
    store = MemorySecretStore({"lab/slurm": "from-keyring"})
    r = SecretResolver(store, environ={"AISC_SECRET_LAB_SLURM": "from-env"})
    assert r.lookup("lab", "slurm").reveal() == "from-env"
    r2 = SecretResolver(store, environ={})
    assert r2.lookup("lab", "slurm").reveal() == "from-keyring"
    assert r2.lookup("lab", "slurm", entry="other") is None


def test_a_missing_secret_says_how_to_provide_it() -> None:
    r = SecretResolver(MemorySecretStore(), environ={})
    with pytest.raises(SecretError) as e:
        r.require("lab", "prometheus")
    assert "aisc-console login lab prometheus" in str(e.value)
    assert "AISC_SECRET_LAB_PROMETHEUS" in str(e.value)
