"""Real local receivers for the alert channels: an HTTP server for webhooks and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpReceiver:
    """Records each POSTed JSON body. `status` is what it answers; `hold()` makes it wait before answering until
    `release()` (a hanging receiver)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.waiting = 0
        self._gate = threading.Event()
        self._gate.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.waiting += 1
                receiver._gate.wait(timeout=60)
                receiver.waiting -= 1
                receiver.bodies.append(json.loads(body))
                receiver.paths.append(self.path)
                try:
                    self.send_response(receiver.status)
                    self.end_headers()
                    self.wfile.write(b"ok" if receiver.status < 300 else b"no")
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class SmtpReceiver:
    """A real SMTP server on loopback. With `tls_dir`, it offers STARTTLS (a self-signed certificate for 127.0.0.1,
    `ca_file` to trust it) and requires AUTH LOGIN/PLAIN with `user`/`password` after it."""

    def __init__(self, tls_dir: Path | None = None, user: str = "", password: str = "") -> None:
        self.inbox = _Inbox()
        self.port = free_port()
        self.ca_file: Path | None = None
        kwargs: dict = {}
        if tls_dir is not None:
            self.ca_file = tls_dir / "cert.pem"
            key = tls_dir / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                            "-out", str(self.ca_file)], check=True, capture_output=True)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.ca_file, key)
            inbox = self.inbox

            def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
                ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                      and auth_data.password.decode() == password)
                if ok:
                    inbox.logins.append(user)
                return AuthResult(success=ok, handled=False)

            kwargs = {"tls_context": context, "require_starttls": True, "auth_required": True,
                      "auth_require_tls": True, "authenticator": authenticate}
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)

    @property
    def messages(self) -> list[Message]:
        return self.inbox.messages

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
