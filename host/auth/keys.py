"""Signing keys: ES256 key sets, generated into the database or given in config.

By default (``auth.keyStore.provider: database``) the ``auth`` plugin keeps
its signing key in its own database, so every worker and instance sharing it
signs with the same key. Operators who keep keys in a secret store use the
static key store, as in Backstage::

    auth:
      keyStore:
        provider: static
        static:
          keys:
            - keyId: primary                      # the first key signs; every key verifies
              privateKey: {$env: GREENROOM_SIGNING_KEY}   # PEM text ($env, $file, ${VAR}) ...
              # privateKeyFile: /run/secrets/signing-key.pem  # ... or a path to the PEM file
            - keyId: previous                     # still accepted, for rotation
              publicKeyFile: /run/secrets/previous.pub.pem

Keys are ECDSA P-256 (``algorithm: ES256``, the only one supported).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from host.config import Config, ConfigError

KEY_STORE_KEY = "auth.keyStore"


@dataclass
class KeySet:
    """The signing key (``kid`` and private key) and every key that verifies, by ``kid``."""

    kid: str
    private: ec.EllipticCurvePrivateKey
    public: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    def jwks(self) -> list[dict[str, Any]]:
        """The public keys as JWKs (``kid``, ``use: sig``, ``alg: ES256``)."""
        keys = []
        for kid, public in self.public.items():
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
            jwk.update({"kid": kid, "use": "sig", "alg": "ES256"})
            keys.append(jwk)
        return keys


def generate_private_pem() -> str:
    """A new P-256 private key as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_private_key(pem: str, where: str) -> ec.EllipticCurvePrivateKey:
    """Parse a P-256 private key; errors name ``where``, never the key material."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where} is not an unencrypted PEM private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{where} must be an ECDSA P-256 key (ES256)")
    return key


def _load_public_key(pem: str, where: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where} is not a PEM public key") from error
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"{where} must be an ECDSA P-256 key (ES256)")
    return key


def _pem(entry: Config, name: str, where: str) -> str | None:
    """``<name>`` (PEM text) or the file at ``<name>File``."""
    inline = entry.get_optional_string(name)
    path = entry.get_optional_path(f"{name}File")  # relative to the config file that names it
    if inline and path:
        raise ConfigError(f"{where} sets both {name} and {name}File")
    if path:
        try:
            return path.read_text()
        except OSError as error:
            raise ConfigError(f"{where}.{name}File cannot be read: {error.strerror}") from error
    return inline


def static_key_set(config: Config) -> KeySet | None:
    """The key set of ``auth.keyStore`` when its provider is ``static``; ``None`` for the database store."""
    provider = config.get_optional_string(f"{KEY_STORE_KEY}.provider") or "database"
    if provider == "database":
        return None
    if provider != "static":
        raise ConfigError(f"Unknown {KEY_STORE_KEY}.provider '{provider}', expected 'database' or 'static'")
    entries = config.get_config_list(f"{KEY_STORE_KEY}.static.keys")
    if not entries:
        raise ConfigError(f"{KEY_STORE_KEY}.static.keys needs at least one key")
    signing: tuple[str, ec.EllipticCurvePrivateKey] | None = None
    public: dict[str, ec.EllipticCurvePublicKey] = {}
    for index, entry in enumerate(entries):
        where = f"{KEY_STORE_KEY}.static.keys[{index}]"
        kid = entry.get_string("keyId")
        if (entry.get_optional_string("algorithm") or "ES256") != "ES256":
            raise ConfigError(f"{where}.algorithm must be ES256")
        if kid in public:
            raise ConfigError(f"{where}.keyId '{kid}' is used twice")
        private_pem = _pem(entry, "privateKey", where)
        public_pem = _pem(entry, "publicKey", where)
        if private_pem is not None:
            private = load_private_key(private_pem, f"{where}.privateKey")
            public[kid] = private.public_key()
            if index == 0:
                signing = (kid, private)
        elif index == 0:
            raise ConfigError(f"{where} signs tokens and needs privateKey or privateKeyFile")
        elif public_pem is not None:
            public[kid] = _load_public_key(public_pem, f"{where}.publicKey")
        else:
            raise ConfigError(f"{where} needs privateKey(File) or publicKey(File)")
    assert signing is not None
    return KeySet(signing[0], signing[1], public)
