# Test bed: a real SMTP server (aiosmtpd) on loopback that stores every received message as .eml files; run by smtp.sh.
"""
Accepts mail on 127.0.0.1:PORT and writes, for each message and each recipient, the message exactly as
received (bytes after SMTP dot-unstuffing, CRLF line endings kept) to

    INBOX/<unix-time-ns, 20 digits>-<sequence, 6 digits>-<recipient>.eml

plus a sidecar <same name>.json with the envelope: {"mail_from", "rcpt_to", "recipient", "mail_options",
"rcpt_options", "auth_user", "peer", "received_ns"}. The .json is written first and each file appears
atomically (written to a dot-temp file, then renamed), so a test that sees the .eml can read both.
Names sort in arrival order.

ESMTP features: 8BITMIME, SMTPUTF8, SIZE, AUTH PLAIN and LOGIN over the plain connection (loopback only,
so no TLS: auth_require_tls=False). Credentials: RELEC_SMTP_USER / RELEC_SMTP_PASSWORD (default
relec / relec-test); wrong credentials get 535. AUTH is optional unless RELEC_SMTP_AUTH_REQUIRED=1, in which
case MAIL before a successful AUTH gets 530.
"""

import argparse
import itertools
import json
import logging
import os
import re
import signal
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

log = logging.getLogger("relec-bed-smtp")


class InboxHandler:
    def __init__(self, inbox: str):
        self.inbox = inbox
        self.seq = itertools.count(1)
        self.lock = threading.Lock()

    def _write_atomic(self, path: str, data: bytes) -> None:
        tmp = os.path.join(self.inbox, "." + os.path.basename(path) + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):  # only if decode_data were enabled
            content = content.encode("utf-8", "surrogateescape")
        login = getattr(session.auth_data, "login", None) if session.authenticated else None
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        received_ns = time.time_ns()
        for rcpt in envelope.rcpt_tos:
            with self.lock:
                seq = next(self.seq)
            safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", rcpt)[:100]
            base = os.path.join(self.inbox, f"{received_ns:020d}-{seq:06d}-{safe}")
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_to": list(envelope.rcpt_tos),
                "recipient": rcpt,
                "mail_options": list(envelope.mail_options),
                "rcpt_options": list(envelope.rcpt_options),
                "auth_user": login,
                "peer": list(session.peer) if session.peer else None,
                "received_ns": received_ns,
            }
            self._write_atomic(base + ".json", json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))
            self._write_atomic(base + ".eml", content)
            log.info("stored %s.eml (from %s, %d bytes)", base, envelope.mail_from, len(content))
        return "250 Message accepted for delivery"


def make_authenticator(user: str, password: str):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            mechanism in ("PLAIN", "LOGIN")
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode("utf-8")
            and auth_data.password == password.encode("utf-8")
        )
        log.info("AUTH %s for %r: %s", mechanism, getattr(auth_data, "login", None), "ok" if ok else "rejected")
        # handled=False lets aiosmtpd answer 535 on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("RELEC_SMTP_PORT", "12525")))
    ap.add_argument("--inbox", required=True)
    args = ap.parse_args()

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    os.makedirs(args.inbox, exist_ok=True)
    user = os.environ.get("RELEC_SMTP_USER", "relec")
    password = os.environ.get("RELEC_SMTP_PASSWORD", "relec-test")
    auth_required = os.environ.get("RELEC_SMTP_AUTH_REQUIRED", "0") == "1"

    controller = Controller(
        InboxHandler(args.inbox),
        hostname=args.host,
        port=args.port,
        server_hostname="relec-bed-smtp.localhost",
        ident="relec test bed SMTP (aiosmtpd)",
        decode_data=False,  # keeps raw bytes and advertises 8BITMIME
        enable_SMTPUTF8=True,
        authenticator=make_authenticator(user, password),
        auth_require_tls=False,  # loopback only
        auth_required=auth_required,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    log.info("listening on %s:%d, inbox %s, auth user %r, auth required: %s",
             args.host, args.port, args.inbox, user, auth_required)
    while not stop.wait(3600):
        pass
    log.info("stopping")
    controller.stop()


if __name__ == "__main__":
    main()
