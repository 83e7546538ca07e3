"""TLS for one destination: the `tls.SSLContext` that checks the platform's certificate and, for
mutual TLS, presents the enterprise's client certificate.

Owns: reading the certificate files named by a destination (`ca`, `client_cert`, `client_key`, files
in the device's config directory, PEM or DER), building the context, the insecure
`insecure_self_signed` switch, and turning mbedtls' handshake errors into sentences an installer can
act on.

MicroPython 1.29 `tls` (mbedtls 3.6), as checked on the sim board against the reference platform:
- `SSLContext(PROTOCOL_TLS_CLIENT)` starts with `verify_mode = CERT_REQUIRED`; with no CA loaded
  every handshake then fails (MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED), so an https destination must pin
  a CA (config.py insists) or switch verification off explicitly.
- `load_verify_locations(data)` and `load_cert_chain(cert, key)` take the bytes themselves, no file
  names and no keywords; each `load_verify_locations` call adds one certificate to the trust list.
- PEM is parsed only where the port's mbedtls has PEM support (the unix build has none; ESP-IDF's
  has): PEM files are turned into DER here, so both forms work on every board.
- The host name of the URL goes to the handshake as `server_hostname` (nengjian.net.http does
  that), and mbedtls checks it against the certificate's names.
- A rejected server certificate raises ValueError with mbedtls' reason during the handshake (the
  first write); a server that refuses our client certificate just closes (EPIPE / reset).
A self-signed platform certificate can be pinned as the `ca` itself (mbedtls trusts a self-signed
end certificate found in the trust list): that is the secure way to talk to such a platform.
"""

from binascii import a2b_base64

from nengjian.net.http import NetError

try:
    import tls
except ImportError:  # CPython (host tests import the helpers only)
    tls = None

INSECURE_WARNING = ("INSECURE: the platform's certificate is NOT verified (insecure_self_signed is on): "
                    "anyone on the network path can read and alter what is uploaded. Pin the platform's "
                    "certificate as 'ca' instead and turn insecure_self_signed off.")


class TlsSetupError(NetError):
    """A certificate or key file of the destination is missing or unusable (the text says which).

    Not a ValueError (it was once): its callers (the platform profile, the update fetcher's set-up)
    catch it by name, and mbedtls' own ValueErrors are turned into it here."""


def der_blocks(data, what):
    """The DER bodies of the PEM blocks in data, or [data] when data is DER already."""
    start = 0
    while start < len(data) and data[start] in b" \t\r\n":
        start += 1
    if data[start:start + 5] != b"-----":
        if not data:
            raise TlsSetupError("%s is empty" % what)
        return [bytes(data)]
    out = []
    pos = start
    while True:
        begin = data.find(b"-----BEGIN ", pos)
        if begin < 0:
            break
        head_end = data.find(b"-----", begin + 11)
        if head_end < 0:
            break
        label = data[begin + 11:head_end]
        body_start = head_end + 5
        end = data.find(b"-----END ", body_start)
        if end < 0:
            raise TlsSetupError("%s: PEM block %s has no END line" % (what, label.decode()))
        body = data[body_start:end]
        if b"ENCRYPTED" in label or b"Proc-Type" in body:
            raise TlsSetupError("%s: an encrypted key cannot be used; store it unencrypted" % what)
        try:
            out.append(a2b_base64(b"".join(body.split())))
        except ValueError:
            raise TlsSetupError("%s: PEM block %s is not valid base64" % (what, label.decode()))
        pos = data.find(b"-----", end + 9)
        if pos < 0:
            break
        pos += 5
    if not out:
        raise TlsSetupError("%s: no PEM block found" % what)
    return out


def _read(config_dir, name, what):
    path = "%s/%s" % (config_dir, name)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TlsSetupError("%s: cannot read %s (%s)" % (what, path, e))


def _read_or_provisioned(config_dir, name, what, credentials, which):
    """A client certificate or key from the config directory or, when no such file is there, from
    the board's provisioned credentials (on the ESP32 the private key lives in the nj_keys NVS
    partition, never on the app filesystem a crew's laptop backs up)."""
    try:
        return _read(config_dir, name, what)
    except TlsSetupError:
        pem = credentials().get(which) if credentials is not None else None
        if not pem:
            raise
        return pem


def build(dest, config_dir, credentials=None):
    """(context, notes) for an https destination; notes are lines worth logging once.
    `credentials`: the board's credentials() (dict with PEM "key" / "cert"), or None.

    Raises TlsSetupError naming the field and the file when a file is missing or unusable."""
    if tls is None:
        raise TlsSetupError("this port has no tls module")
    notes = []
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    if dest.get("insecure_self_signed"):
        ctx.verify_mode = tls.CERT_NONE
    else:
        name = dest.get("ca")
        if not name:
            raise TlsSetupError("ca: an https destination needs a pinned CA certificate")
        certs = der_blocks(_read(config_dir, name, "ca"), "ca " + name)
        for i, der in enumerate(certs):
            try:
                ctx.load_verify_locations(der)
            except ValueError as e:
                raise TlsSetupError("ca %s: certificate %d of %d is not usable (%s)" % (name, i + 1, len(certs), e))
        ctx.verify_mode = tls.CERT_REQUIRED
    cert_name = dest.get("client_cert")
    if cert_name:
        key_name = dest.get("client_key")
        chain = der_blocks(_read_or_provisioned(config_dir, cert_name, "client_cert", credentials, "cert"),
                           "client_cert " + cert_name)
        keys = der_blocks(_read_or_provisioned(config_dir, key_name, "client_key", credentials, "key"),
                          "client_key " + key_name)
        if len(chain) > 1:
            # mbedtls takes one DER certificate per call here: the platform must know the issuer.
            notes.append("client_cert %s holds %d certificates: only the first is presented" % (cert_name, len(chain)))
        try:
            ctx.load_cert_chain(chain[0], keys[0])
        except ValueError as e:
            raise TlsSetupError("client_cert %s / client_key %s: not usable (%s)" % (cert_name, key_name, e))
    return ctx, notes


# mbedtls verify texts (x509_crt_verify_info) and what they mean to an installer.
_CERT_WORDS = ("certificate", "Certificate", "CRL", "CN)")


_EPIPE = 32
_ECONNRESET = 104


def explain(message, dest, errno=None):
    """A transport error text made clear when it is a TLS verification failure, else unchanged."""
    text = " ".join(message.split())
    if any(w in text for w in _CERT_WORDS):
        return "TLS: the platform's certificate was rejected: %s (pinned CA %s; check the file and the URL's host name)" % (
            text.replace("malformed response: ", ""), dest.get("ca"))
    # A server that refuses a client certificate closes the handshake: we see only EPIPE or a reset.
    low = text.lower()
    if dest.get("client_cert") and (errno in (_EPIPE, _ECONNRESET) or "fatal alert" in low or "fatal_alert" in low):
        return "%s (TLS: the platform may have refused our client certificate %s)" % (text, dest["client_cert"])
    return message
