"""An independent check of Standard Webhooks v1a (Ed25519) signatures, written from the spec text
with Python's `cryptography` package (no hookline code).

The spec: the signed content is "<webhook-id>.<webhook-timestamp>.<body>"; `webhook-signature`
holds space-delimited "<version>,<base64 signature>" entries, `v1a` being Ed25519; public keys
are "whpk_" + base64 of the 32-byte raw key.
Input (stdin): a JSON list of deliveries {"id", "timestamp", "signature", "body_b64",
"public_keys": [whpk_...]}. Output (stdout): a JSON list, per delivery, of the public keys
that verify at least one v1a entry of its header.
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verifies(public_key: str, content: bytes, header: str) -> bool:
    if not public_key.startswith("whpk_"):
        raise ValueError("public keys start with whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_"):]))
    for entry in header.split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), content)
            return True
        except InvalidSignature:
            pass
    return False


def main() -> None:
    results = []
    for d in json.load(sys.stdin):
        content = f"{d['id']}.{d['timestamp']}.".encode() + base64.b64decode(d["body_b64"])
        results.append([k for k in d["public_keys"] if verifies(k, content, d["signature"])])
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
