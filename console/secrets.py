"""Secrets: API tokens and passwords live in the OS keyring, never in the config file.

An endpoint's secret is found under the keyring service ``aisc-console`` with the user name
``<cluster>/<endpoint>`` (or the name the config's ``secret`` key gives). On a headless server
with no keyring backend, an environment variable ``AISC_SECRET_<CLUSTER>_<ENDPOINT>`` (upper
case, anything not a letter or digit turned into ``_``) serves instead; it wins over the keyring
so that a service unit can override a stale keyring entry.

Secret values are wrapped in `Secret`, whose repr and str never show the value, so that a stray
log line or exception message cannot leak one.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

SERVICE = "aisc-console"


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


class SecretError(RuntimeError):
    """A secret could not be stored or found; the message says what to do, never the value."""


def entry_name(cluster: str, endpoint: str) -> str:
    return f"{cluster}/{endpoint}"


def env_var_name(cluster: str, endpoint: str) -> str:
    return "AISC_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{cluster}_{endpoint}").upper()


class SecretStore(Protocol):
    def get(self, entry: str) -> Secret | None: ...
    def set(self, entry: str, value: str) -> None: ...
    def delete(self, entry: str) -> None: ...


class MemorySecretStore:
    """For tests: never touches the developer's real keyring."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self._d = dict(initial or {})

    def get(self, entry: str) -> Secret | None:
        v = self._d.get(entry)
        return None if v is None else Secret(v)

    def set(self, entry: str, value: str) -> None:
        self._d[entry] = value

    def delete(self, entry: str) -> None:
        self._d.pop(entry, None)


class KeyringSecretStore:
    """The OS keyring through `keyring`; explains itself when no backend exists."""

    def __init__(self) -> None:
        import keyring

        self._keyring = keyring

    def available(self) -> tuple[bool, str]:
        backend = self._keyring.get_keyring()
        name = type(backend).__module__ + "." + type(backend).__name__
        if "fail" in name.lower() or getattr(backend, "priority", 1) <= 0:
            return False, ("no OS keyring is available on this machine (no Secret Service, "
                           "KWallet or macOS/Windows keychain)")
        return True, name

    def get(self, entry: str) -> Secret | None:
        ok, _ = self.available()
        if not ok:
            return None
        try:
            v = self._keyring.get_password(SERVICE, entry)
        except Exception as e:
            raise SecretError(f"reading keyring entry {entry!r} failed: {type(e).__name__}") from None
        return None if v is None else Secret(v)

    def set(self, entry: str, value: str) -> None:
        ok, why = self.available()
        if not ok:
            raise SecretError(why)
        try:
            self._keyring.set_password(SERVICE, entry, value)
        except Exception as e:
            raise SecretError(f"storing keyring entry {entry!r} failed: {type(e).__name__}") from None

    def delete(self, entry: str) -> None:
        try:
            self._keyring.delete_password(SERVICE, entry)
        except Exception:
            pass


class SecretResolver:
    """Finds an endpoint's secret: environment variable first, then the store."""

    def __init__(self, store: SecretStore | None = None, environ: dict[str, str] | None = None) -> None:
        self._store = store
        self._env = os.environ if environ is None else environ

    def lookup(self, cluster: str, endpoint: str, entry: str | None = None) -> Secret | None:
        v = self._env.get(env_var_name(cluster, endpoint))
        if v:
            return Secret(v)
        if self._store is None:
            return None
        return self._store.get(entry or entry_name(cluster, endpoint))

    def require(self, cluster: str, endpoint: str, entry: str | None = None) -> Secret:
        s = self.lookup(cluster, endpoint, entry)
        if s is None:
            raise SecretError(
                f"no secret for {cluster}/{endpoint}: run `aisc-console login {cluster} {endpoint}` "
                f"or set {env_var_name(cluster, endpoint)}")
        return s


def default_resolver() -> SecretResolver:
    try:
        store: SecretStore | None = KeyringSecretStore()
    except Exception:
        store = None
    return SecretResolver(store)
