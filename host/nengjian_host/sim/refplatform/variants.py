"""Security variants of the platform session (SPEC 3.2) and the SM4 primitives they need.

Owns: the variant names, SM4-ECB field decryption (Shandong), the SM4-CBC password and bearer tokens
(Yunnan), and the encrypt-side helpers a test or a reference client uses to build requests. The block
cipher itself is gmssl's CryptSM4; padding and CBC chaining are done here because gmssl neither checks
PKCS#7 padding on decryption nor offers CBC without padding.

Variants:
- ``plain``          JSON in the clear (over HTTPS when a certificate is configured)
- ``mtls``           like plain, but the TLS client must present a certificate from ``client_ca``
- ``sm4-ecb``        registration returns ``secretKey`` (32 hex); every value of every data[] record is
                     lower-case hex of SM4-ECB(PKCS#7(utf-8 text of the value)); deviceId and
                     enterpriseCode stay plain
- ``sm4-cbc-token``  registration returns ``secretKey``; POST /api/token {deviceId, enterpriseCode,
                     password} returns a bearer token; every other call after registration needs
                     ``Authorization: Bearer <token>``; an unknown or expired token is HTTP 401
"""

import json
import re
import secrets
import threading

from gmssl.sm4 import SM4_DECRYPT, SM4_ENCRYPT, CryptSM4

VARIANTS = ("plain", "mtls", "sm4-ecb", "sm4-cbc-token")
SECRET_KEY_VARIANTS = ("sm4-ecb", "sm4-cbc-token")

_HEX_RE = re.compile(r"(?:[0-9a-f]{32})+")
# JSON number grammar: what the plain text of a numeric field must look like after decryption.
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMERIC_FIELDS = ("dataValue", "inputType", "statType", "scope")


class DecryptError(ValueError):
    pass


def _sm4_blocks(key, data, mode):
    """Raw SM4 over whole 16-byte blocks (no padding, no chaining)."""
    cipher = CryptSM4()
    cipher.set_key(key, mode)
    out = bytearray()
    for i in range(0, len(data), 16):
        out += bytes(cipher.one_round(cipher.sk, list(data[i:i + 16])))
    return bytes(out)


def _pkcs7_pad(data):
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def _pkcs7_unpad(data):
    n = data[-1] if data else 0
    if not 1 <= n <= 16 or data[-n:] != bytes([n]) * n:
        raise DecryptError("bad PKCS#7 padding (wrong key?)")
    return data[:-n]


def sm4_ecb_encrypt_hex(key_hex, text):
    """Lower-case hex of SM4-ECB(PKCS#7(text utf-8)) under the 32-hex `key_hex`."""
    key = bytes.fromhex(key_hex)
    return _sm4_blocks(key, _pkcs7_pad(text.encode("utf-8")), SM4_ENCRYPT).hex()


def sm4_ecb_decrypt_hex(key_hex, cipher_hex):
    """Inverse of sm4_ecb_encrypt_hex; DecryptError on anything but well-formed ciphertext."""
    if not isinstance(cipher_hex, str):
        raise DecryptError("value is not a hex string")
    if not _HEX_RE.fullmatch(cipher_hex):
        raise DecryptError("value is not lower-case hex of whole 16-byte blocks")
    plain = _pkcs7_unpad(_sm4_blocks(bytes.fromhex(key_hex), bytes.fromhex(cipher_hex), SM4_DECRYPT))
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptError("plain text is not UTF-8 (wrong key?)") from None


def plain_text_of(value):
    """How a gateway writes a JSON value as text before encrypting it (strings as-is)."""
    return value if isinstance(value, str) else json.dumps(value)


def encrypt_record(record, key_hex):
    """Encrypt every value of a data[] record (reference client side, used by tests)."""
    return {name: sm4_ecb_encrypt_hex(key_hex, plain_text_of(value)) for name, value in record.items()}


def decrypt_record(record, key_hex, valid_encoding):
    """Decrypt every value of a data[] record back to JSON types.

    Numeric fields become numbers when their text is a JSON number and stay strings otherwise (the
    validator then names the field); ``valid`` becomes a bool under the json encoding and stays the
    "0"/"1" string under the provincial ones.
    """
    if not isinstance(record, dict):
        return record
    out = {}
    for name, value in record.items():
        try:
            text = sm4_ecb_decrypt_hex(key_hex, value)
        except DecryptError as exc:
            raise DecryptError("field %s: %s" % (name, exc)) from None
        if name in _NUMERIC_FIELDS and _NUMBER_RE.fullmatch(text):
            out[name] = json.loads(text)
        elif name == "valid" and valid_encoding == "json" and text in ("true", "false"):
            out[name] = text == "true"
        else:
            out[name] = text
    return out


# -- Yunnan password and tokens ------------------------------------------------------------------
def _password_key_iv(secret_key, enterprise_code):
    return secret_key[:16].encode("ascii"), enterprise_code[:16].encode("ascii")


def yunnan_password(secret_key, enterprise_code, pin):
    """hex(SM4-CBC, no padding): key = first 16 chars of secretKey, IV = first 16 of enterpriseCode,
    one block = 2-digit PIN length + PIN + 'F' up to 16 characters."""
    if not 1 <= len(pin) <= 14:
        raise ValueError("PIN must be 1..14 characters")
    block = ("%02d%s" % (len(pin), pin)).ljust(16, "F").encode("ascii")
    key, iv = _password_key_iv(secret_key, enterprise_code)
    return _sm4_blocks(key, bytes(a ^ b for a, b in zip(block, iv)), SM4_ENCRYPT).hex()


def yunnan_pin_from_password(secret_key, enterprise_code, password):
    """The PIN inside a Yunnan password; DecryptError if it is not a well-formed password block."""
    if not isinstance(password, str) or not re.fullmatch(r"[0-9a-f]{32}", password):
        raise DecryptError("password must be 32 lower-case hex characters")
    key, iv = _password_key_iv(secret_key, enterprise_code)
    block = bytes(a ^ b for a, b in zip(_sm4_blocks(key, bytes.fromhex(password), SM4_DECRYPT), iv))
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        raise DecryptError("password does not decrypt to a PIN block") from None
    if not text[:2].isdigit() or not 1 <= int(text[:2]) <= 14:
        raise DecryptError("password does not decrypt to a PIN block")
    n = int(text[:2])
    if text[2 + n:] != "F" * (14 - n):
        raise DecryptError("password does not decrypt to a PIN block")
    return text[2:2 + n]


class TokenBook:
    """Bearer tokens issued per device, each with an expiry on the platform clock."""

    def __init__(self, ttl_s):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._tokens = {}
        self._issued = []

    def issue(self, device_id, now):
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = (device_id, now + self.ttl_s)
            self._issued.append(token)
        return token

    def issued(self):
        with self._lock:
            return list(self._issued)

    def check(self, token, now):
        """The device id the token belongs to; ValueError naming why it is refused."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                raise ValueError("unknown token")
            if now >= entry[1]:
                del self._tokens[token]
                raise ValueError("token expired")
        return entry[0]

    def expire_all(self):
        with self._lock:
            self._tokens.clear()
