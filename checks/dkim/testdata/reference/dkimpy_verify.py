"""Verify messages with dkimpy (python3-dkim) for mxguard's comparison test
(checks/dkim/reference_test.go).

Usage: /usr/bin/python3 dkimpy_verify.py KEYS.json MESSAGE...

KEYS.json maps key record names (selector._domainkey.domain, lower case)
to their TXT text. Those are the only DNS answers dkimpy gets: its lookup
hook answers from them, and every socket is refused, so the machine's
resolver is never asked. Prints one JSON object: for each message file,
the list of its signatures' verdicts in header order, each
{"result": "pass" | "fail" | "error", "detail": ...}.
"""

import json
import socket
import sys

import dkim
import dkim.dnsplug


def refuse(*args, **kwargs):
    raise RuntimeError("dkimpy_verify: network access refused: DNS comes only from KEYS.json")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        records = json.load(f)

    # Nothing may reach the network: the test's keys are the only DNS.
    socket.socket = refuse
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    dkim.dnsplug.get_txt = refuse

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        rec = records.get(name.rstrip(".").lower())
        return None if rec is None else rec.encode("ascii")

    out = {}
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            msg = f.read()
        count = sum(1 for k, _ in dkim.DKIM(msg).headers if k.lower() == b"dkim-signature")
        verdicts = []
        for idx in range(count):
            try:
                ok = dkim.DKIM(msg, minkey=1024).verify(idx=idx, dnsfunc=dnsfunc)
                verdicts.append({"result": "pass" if ok else "fail", "detail": ""})
            except dkim.DKIMException as e:
                verdicts.append({"result": "error", "detail": str(e)})
        out[path] = verdicts
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
