"""Reference platform: a host-side stand-in for the city/provincial energy-monitoring platform.

Plays the national-style ``ndrc-json`` session of SPEC 3.1 (register, version check, data upload) over
HTTP or HTTPS for tests and ``make run``, stores what it accepts in SQLite, validates every field
strictly, and can be told at run time to misbehave (faults.py) so the gateway's uplink can be tested.

Batch policy (a deliberate choice): a data batch is **atomic**. If any record is invalid, the answer is
responseCode "1" with ``errors: [{index, dataCode, reason}]`` and nothing from the batch is stored; the
gateway is expected to set aside the named records and resend the rest. Whole-request problems
(unknown deviceId or one that does not match enterpriseCode, a bad envelope) are responseCode "2",
SM4 decryption failures responseCode "3" (no per-record list, so a wrong key never makes the gateway
discard good data). Success is responseCode "0" (configurable) with ``accepted: N``. Unreadable
requests (wrong Content-Type, malformed JSON) are HTTP 400 with a JSON body.

Layout: validate.py (wire rules), store.py (SQLite), variants.py (SPEC 3.2 security options, SM4),
faults.py (fault switch), service.py (endpoint logic), server.py (HTTP and the RefPlatform API),
__main__.py (CLI: ``python -m nengjian_host.sim.refplatform --port 8080 --db run/platform.sqlite``).
"""

from .faults import FAULT_MODES
from .server import RefPlatform, parse_json_body
from .service import API_PATHS, DEVICE_MISMATCH, describe_batch
from .validate import (
    RECORD_FIELDS,
    VALID_ENCODINGS,
    check_data_code,
    check_enterprise_code,
    check_record,
    credit_check_char,
)
from .variants import VARIANTS, encrypt_record, sm4_ecb_decrypt_hex, sm4_ecb_encrypt_hex, yunnan_password

__all__ = [
    "API_PATHS", "DEVICE_MISMATCH", "FAULT_MODES", "RECORD_FIELDS", "VALID_ENCODINGS", "VARIANTS",
    "RefPlatform", "check_data_code", "check_enterprise_code", "check_record", "credit_check_char",
    "describe_batch", "encrypt_record", "parse_json_body", "sm4_ecb_decrypt_hex", "sm4_ecb_encrypt_hex",
    "yunnan_password",
]
